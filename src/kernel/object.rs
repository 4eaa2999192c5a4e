//! [`Object`]: a typed handle on kernel memory.

use std::sync::Arc;

use crate::addr::{Endian, VirtAddr};
use crate::debuginfo::{BaseEncoding, Type, TypeId, TypeKind, find_member};
use crate::kernel::{Kernel, KernelError};

/// An address and a type; bitfield members also carry their bit position. Cheap to copy; reads
/// happen only in the value methods (`u64`, `i64`, `cstring`, `deref`, …).
#[derive(Clone, Copy)]
pub struct Object<'k> {
    kernel: &'k Kernel,
    addr: VirtAddr,
    ty: TypeId,
    /// For a bitfield: (bit offset from `addr`, 0..8; width in bits).
    bits: Option<(u64, u64)>,
}

impl std::fmt::Debug for Object<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("addr", &self.addr)
            .field("type", &self.kernel.type_name(self.ty))
            .field("bits", &self.bits)
            .finish()
    }
}

impl<'k> Object<'k> {
    pub(crate) fn new(kernel: &'k Kernel, addr: VirtAddr, ty: TypeId) -> Object<'k> {
        Object {
            kernel,
            addr,
            ty,
            bits: None,
        }
    }

    pub fn kernel(&self) -> &'k Kernel {
        self.kernel
    }
    pub fn address(&self) -> VirtAddr {
        self.addr
    }
    pub fn type_id(&self) -> TypeId {
        self.ty
    }
    /// The C name of the object's type, for messages.
    pub fn type_name(&self) -> String {
        self.kernel.type_name(self.ty)
    }
    /// `Some((bit offset from address(), width))` for a bitfield.
    pub fn bitfield(&self) -> Option<(u64, u64)> {
        self.bits
    }

    /// The object's type with typedefs followed.
    pub fn resolved_type(&self) -> Result<Arc<Type>, KernelError> {
        Ok(self.kernel.resolve(self.ty)?.1)
    }

    /// Size in bytes of the object's type.
    pub fn size(&self) -> Result<u64, KernelError> {
        let t = self.resolved_type()?;
        match (&t.kind, t.size) {
            (_, Some(s)) => Ok(s),
            (TypeKind::Pointer { .. }, None) => Ok(8),
            (TypeKind::Array { element, count }, None) => {
                let Some(n) = count else {
                    return Err(KernelError::WrongType(format!(
                        "{} has no size (flexible array)",
                        self.type_name()
                    )));
                };
                let es = self.kernel.object(self.addr, *element).size()?;
                es.checked_mul(*n)
                    .ok_or_else(|| KernelError::Corrupt("array size overflows".into()))
            }
            _ => Err(KernelError::WrongType(format!(
                "{} has no size",
                self.type_name()
            ))),
        }
    }

    /// The same memory seen as another type.
    pub fn cast(&self, ty: TypeId) -> Object<'k> {
        Object {
            ty,
            bits: None,
            ..*self
        }
    }

    /// The same memory seen as a type named in C.
    pub fn cast_to(&self, type_name: &str) -> Result<Object<'k>, KernelError> {
        Ok(self.cast(self.kernel.find_type(type_name)?))
    }

    // ---- navigation -------------------------------------------------------------------------

    /// Follows a member path: `"name.release"`, `"se.group_node"`, `"bits[1]"`. Anonymous
    /// struct and union members are searched as C does. Pointers are not followed implicitly:
    /// use [`Object::deref`] or [`Object::member_ptr`].
    pub fn member(&self, path: &str) -> Result<Object<'k>, KernelError> {
        let mut cur = *self;
        for (depth, part) in path.split('.').enumerate() {
            let (name, indices) = split_indices(part)?;
            if !name.is_empty() {
                cur = cur.one_member(name, depth > 0)?;
            }
            for i in indices {
                cur = cur.index(i)?;
            }
        }
        Ok(cur)
    }

    /// `nested`: the member is looked up inside another member of the path. There, a plain
    /// scalar where this kernel version has no aggregate is a version difference ("no such
    /// member in this kernel": 6.9 turned `sched_avg.util_est` from a struct into an `unsigned
    /// int`, so `avg.util_est.enqueued` is gone), while a pointer stays a caller error: pointers
    /// are never followed implicitly.
    fn one_member(&self, name: &str, nested: bool) -> Result<Object<'k>, KernelError> {
        let (id, t) = self.kernel.resolve(self.ty)?;
        if nested && matches!(t.kind, TypeKind::Base { .. } | TypeKind::Enum { .. }) {
            return Err(KernelError::NoMember {
                ty: self.type_name(),
                member: name.to_string(),
            });
        }
        if !matches!(t.kind, TypeKind::Struct { .. } | TypeKind::Union { .. }) {
            return Err(KernelError::WrongType(format!(
                "member {name:?} of {}, which is not a struct or union",
                self.type_name()
            )));
        }
        let m =
            find_member(self.kernel.types(), id, name)?.ok_or_else(|| KernelError::NoMember {
                ty: self.kernel.type_name(id),
                member: name.to_string(),
            })?;
        let addr = self.addr.add(m.bit_offset / 8);
        Ok(Object {
            kernel: self.kernel,
            addr,
            ty: m.ty,
            bits: m.bit_size.map(|w| (m.bit_offset % 8, w)),
        })
    }

    /// The first of several member paths this kernel has. Used where a member was renamed:
    /// pass the current name first, then the older ones, and name the kernel version that
    /// renamed it at the call site. Fails with the error for the first name if none exists.
    pub fn member_any(&self, paths: &[&str]) -> Result<Object<'k>, KernelError> {
        let mut first_err = None;
        for p in paths {
            match self.member(p) {
                Ok(o) => return Ok(o),
                Err(e @ KernelError::NoMember { .. }) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_err.unwrap_or_else(|| KernelError::NoMember {
            ty: self.type_name(),
            member: String::new(),
        }))
    }

    /// Whether the member path exists in this kernel's type.
    pub fn has_member(&self, path: &str) -> Result<bool, KernelError> {
        match self.member(path) {
            Ok(_) => Ok(true),
            Err(KernelError::NoMember { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A task's scheduler state. Linux 5.14 renamed `task_struct.state` to `__state` (and made
    /// it an `unsigned int`, from `long`); the new name is tried first.
    pub fn task_state(&self) -> Result<u64, KernelError> {
        self.member_any(&["__state", "state"])?.u64()
    }

    /// The object a pointer points to. `void *` cannot be dereferenced: cast it first.
    pub fn deref(&self) -> Result<Object<'k>, KernelError> {
        let t = self.resolved_type()?;
        match t.kind {
            TypeKind::Pointer {
                target: Some(target),
            } => {
                let p = self.pointer()?;
                Ok(self.kernel.object(p, target))
            }
            TypeKind::Pointer { target: None } => Err(KernelError::WrongType(format!(
                "cannot dereference void pointer at {}",
                self.addr
            ))),
            _ => Err(KernelError::WrongType(format!(
                "dereference of {}, which is not a pointer",
                self.type_name()
            ))),
        }
    }

    /// `p->path`: dereferences a pointer then follows a member path.
    pub fn member_ptr(&self, path: &str) -> Result<Object<'k>, KernelError> {
        self.deref()?.member(path)
    }

    /// Element `i` of an array, or `p[i]` for a pointer. Bounds of fixed arrays are checked.
    pub fn index(&self, i: u64) -> Result<Object<'k>, KernelError> {
        let t = self.resolved_type()?;
        let (base, elem) = match t.kind {
            TypeKind::Array { element, count } => {
                if let Some(n) = count
                    && i >= n
                {
                    return Err(KernelError::WrongType(format!(
                        "index {i} out of bounds of {}",
                        self.type_name()
                    )));
                }
                (self.addr, element)
            }
            TypeKind::Pointer {
                target: Some(target),
            } => (self.pointer()?, target),
            _ => {
                return Err(KernelError::WrongType(format!(
                    "index into {}, which is not an array or pointer",
                    self.type_name()
                )));
            }
        };
        let es = self.kernel.object(base, elem).size()?;
        let off = es
            .checked_mul(i)
            .ok_or_else(|| KernelError::Corrupt("array offset overflows".into()))?;
        Ok(self.kernel.object(base.add(off), elem))
    }

    /// Number of elements of a fixed-size array (`None` for a flexible array).
    pub fn array_len(&self) -> Result<Option<u64>, KernelError> {
        match self.resolved_type()?.kind {
            TypeKind::Array { count, .. } => Ok(count),
            _ => Err(KernelError::WrongType(format!(
                "{} is not an array",
                self.type_name()
            ))),
        }
    }

    /// The enclosing object when this object is the member `member_path` of a `type_name`
    /// (the kernel's `container_of`). If this object is a pointer, its value is used instead of
    /// its address, as the macro is normally applied to a pointer.
    pub fn container_of(
        &self,
        type_name: &str,
        member_path: &str,
    ) -> Result<Object<'k>, KernelError> {
        let addr = match self.resolved_type()?.kind {
            TypeKind::Pointer { .. } => self.pointer()?,
            _ => self.addr,
        };
        self.kernel.container_of(addr, type_name, member_path)
    }

    // ---- values -----------------------------------------------------------------------------

    /// The raw bytes of the object.
    pub fn bytes(&self) -> Result<Vec<u8>, KernelError> {
        let n = self.size()?;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= 1 << 24)
            .ok_or_else(|| KernelError::WrongType(format!("object of {n} bytes is too big")))?;
        self.kernel.read_bytes(self.addr, n)
    }

    /// The value of a pointer.
    pub fn pointer(&self) -> Result<VirtAddr, KernelError> {
        match self.resolved_type()?.kind {
            TypeKind::Pointer { .. } => self.kernel.read_ptr(self.addr),
            _ => Err(KernelError::WrongType(format!(
                "{} is not a pointer",
                self.type_name()
            ))),
        }
    }

    /// Width in bytes and signedness of an integer-like object (integer, bool, char, enum,
    /// pointer).
    fn int_shape(&self) -> Result<(u64, bool), KernelError> {
        let t = self.resolved_type()?;
        match &t.kind {
            TypeKind::Base { encoding } if *encoding != BaseEncoding::Float => {
                Ok((t.size.unwrap_or(0), encoding.is_signed()))
            }
            TypeKind::Enum { signed, .. } => Ok((t.size.unwrap_or(4), *signed)),
            TypeKind::Pointer { .. } => Ok((t.size.unwrap_or(8), false)),
            _ => Err(KernelError::WrongType(format!(
                "{} is not an integer",
                self.type_name()
            ))),
        }
    }

    /// Reads the value as raw bits, with its width in bits and signedness.
    fn raw_value(&self) -> Result<(u64, u32, bool), KernelError> {
        let (size, signed) = self.int_shape()?;
        if let Some((bit, width)) = self.bits {
            if width == 0 || width > 64 {
                return Err(KernelError::Corrupt(format!("bitfield of {width} bits")));
            }
            let nbytes = (bit + width).div_ceil(8) as usize;
            let mut b = [0u8; 16];
            self.kernel.read(self.addr, &mut b[..nbytes])?;
            let v = match self.kernel.space().endian() {
                Endian::Little => u128::from_le_bytes(b) >> bit,
                // Big-endian bit offsets count from the most significant bit of the first byte.
                Endian::Big => u128::from_be_bytes(b) >> (128 - bit - width),
            };
            let mask = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width) - 1
            };
            return Ok(((v as u64) & mask, width as u32, signed));
        }
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(KernelError::WrongType(format!(
                "{} has unsupported integer width {size}",
                self.type_name()
            )));
        }
        let v = self.kernel.read_uint(self.addr, size as usize)?;
        Ok((v, (size * 8) as u32, signed))
    }

    /// The integer value as an `i64`: sign-extended from the type's width when the type is
    /// signed, zero-extended when unsigned.
    pub fn i64(&self) -> Result<i64, KernelError> {
        let (v, width, signed) = self.raw_value()?;
        Ok(if signed && width < 64 {
            let shift = 64 - width;
            ((v << shift) as i64) >> shift
        } else {
            v as i64
        })
    }

    /// The integer value as a `u64`. Signed values are sign-extended first (so `-1` of an
    /// `int` reads as `u64::MAX`, as C converts it).
    pub fn u64(&self) -> Result<u64, KernelError> {
        self.i64().map(|v| v as u64)
    }

    pub fn bool(&self) -> Result<bool, KernelError> {
        Ok(self.raw_value()?.0 != 0)
    }

    /// The value of an enum object and the name of its enumerator, if one matches.
    pub fn enum_value(&self) -> Result<(i64, Option<String>), KernelError> {
        let t = self.resolved_type()?;
        let TypeKind::Enum { enumerators, .. } = &t.kind else {
            return Err(KernelError::WrongType(format!(
                "{} is not an enum",
                self.type_name()
            )));
        };
        let v = self.i64()?;
        let name = enumerators
            .iter()
            .find(|(_, e)| *e == v)
            .map(|(n, _)| n.clone());
        Ok((v, name))
    }

    /// A bounded C string, bytes as they are (no UTF-8 decoding): from a `char[N]` array (at
    /// most N and `max` bytes, up to the first NUL) or through a `char *` pointer.
    pub fn cstring(&self, max: usize) -> Result<Vec<u8>, KernelError> {
        let t = self.resolved_type()?;
        match t.kind {
            TypeKind::Array { count, .. } => {
                let n = count.map_or(max, |c| (c as usize).min(max));
                let mut v = self.kernel.read_bytes(self.addr, n)?;
                if let Some(p) = v.iter().position(|&b| b == 0) {
                    v.truncate(p);
                }
                Ok(v)
            }
            TypeKind::Pointer { .. } => {
                let p = self.pointer()?;
                self.kernel.read_cstr(p, max)
            }
            _ => Err(KernelError::WrongType(format!(
                "{} is not a string",
                self.type_name()
            ))),
        }
    }

    /// [`Object::cstring`] decoded for display, invalid UTF-8 replaced.
    pub fn string_lossy(&self, max: usize) -> Result<String, KernelError> {
        Ok(String::from_utf8_lossy(&self.cstring(max)?).into_owned())
    }
}

/// `"bits[1][2]"` → `("bits", [1, 2])`.
fn split_indices(part: &str) -> Result<(&str, Vec<u64>), KernelError> {
    let bad = || KernelError::WrongType(format!("bad member path component {part:?}"));
    let Some(open) = part.find('[') else {
        if part.is_empty() {
            return Err(bad());
        }
        return Ok((part, Vec::new()));
    };
    let name = &part[..open];
    let mut rest = &part[open..];
    let mut idx = Vec::new();
    while let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']').ok_or_else(bad)?;
        let n: u64 = r[..close].trim().parse().map_err(|_| bad())?;
        idx.push(n);
        rest = &r[close + 1..];
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok((name, idx))
}
