//! The sos-layout archive: a private build tree, then a tarball, its checksum and optionally its
//! gpg-encrypted form.
//!
//! Layout, as sos lays out its reports (sos/archive.py, sos/report/__init__.py):
//!
//! ```text
//! sosvmcore-<nodename>[-<label>]-<YYYY-MM-DD>-<7 lowercase letters>/
//!     version.txt              "vmcore-report: <version>"
//!     sos_reports/manifest.json
//!     sos_logs/sos.log         everything logged
//!     sos_logs/ui.log          what the user saw
//!     plugins/<name>/...       each plugin's files
//!     ...                      deliberate extra paths (sys/kernel/debug/sched/debug, ...)
//!     lsmod -> sos_commands/kernel/lsmod   root symlinks, as sos makes them
//! ```
//!
//! Symbolic links are stored in the tar as links (type `2`, their relative target), never
//! followed; a plugin can only make one whose target stays inside the archive.
//!
//! The tree is built in a private directory (0700, files 0600) created under the tmp dir; the
//! tarball's top directory is the archive name, and `version.txt`, `sos_reports/` and
//! `sos_logs/` are stored first so a reader can get at them without reading the whole stream.
//! The tarball is written under a temporary name beside its final place and renamed when
//! complete, so a half-written archive never carries the final name. `<archive>.sha256` holds the
//! hex SHA-256 of the final file and a newline.
//!
//! With `SOURCE_DATE_EPOCH` set (the reproducible-builds convention), every tar entry gets that
//! mtime and uid/gid 0, so two runs over the same input store identical metadata. Entries are
//! always sorted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rand::RngExt;
use sha2::{Digest, Sha256};

use super::plugin::{OutputSink, PluginError, validate_rel_path};

/// The archive name's prefix (sos uses `sosreport-`).
pub const NAME_PREFIX: &str = "sosvmcore";

/// Errors of building, packing, checksumming or encrypting the archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("refusing archive path: {0}")]
    BadPath(String),
    #[error(
        "gpg is not installed (needed for --encrypt-key/--encrypt-pass); the unencrypted archive was kept"
    )]
    GpgMissing,
    #[error("gpg failed ({status}): {stderr}; the unencrypted archive was kept")]
    GpgFailed { status: String, stderr: String },
}

impl ArchiveError {
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::Io { .. } => "archive-io",
            ArchiveError::BadPath(_) => "bad-path",
            ArchiveError::GpgMissing => "gpg-missing",
            ArchiveError::GpgFailed { .. } => "gpg-failed",
        }
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ArchiveError {
    let path = path.to_path_buf();
    move |source| ArchiveError::Io { what, path, source }
}

/// Keeps only the characters sos keeps in archive names: `[-a-zA-Z.0-9]`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect()
}

/// Seven random lowercase letters, as sos appends to every archive name.
pub fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..7)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// `sosvmcore-<nodename>[-<label>]-<date>-<suffix>`, nodename and label sanitized; an empty
/// nodename (after sanitizing) becomes `unknown`, an empty label is left out.
pub fn archive_name(nodename: &str, label: Option<&str>, date: &str, suffix: &str) -> String {
    let mut host = sanitize(nodename);
    if host.is_empty() {
        host = "unknown".into();
    }
    let mut name = format!("{NAME_PREFIX}-{host}");
    if let Some(l) = label.map(sanitize).filter(|l| !l.is_empty()) {
        name.push('-');
        name.push_str(&l);
    }
    name.push('-');
    name.push_str(date);
    name.push('-');
    name.push_str(suffix);
    name
}

/// `-z/--compression-type`, `auto` already resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Gzip,
    None,
}

impl Compression {
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Xz => ".tar.xz",
            Compression::Gzip => ".tar.gz",
            Compression::None => ".tar",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Compression::Xz => "xz",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }
}

/// How to encrypt the finished archive.
#[derive(Clone)]
pub enum Encryption {
    /// A gpg key id or fingerprint (public-key encryption).
    Key(String),
    /// A passphrase (symmetric encryption).
    Pass(String),
}

impl std::fmt::Debug for Encryption {
    // the passphrase must never reach a log through a debug print
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encryption::Key(k) => write!(f, "Key({k:?})"),
            Encryption::Pass(_) => f.write_str("Pass(<hidden>)"),
        }
    }
}

/// `SOURCE_DATE_EPOCH`, when set to an integer: the fixed mtime of deterministic archives.
pub fn deterministic_epoch() -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

/// The build tree of one archive.
pub struct BuildDir {
    /// The private temporary directory; dropping it removes the tree.
    tmp: tempfile::TempDir,
    dir: PathBuf,
    name: String,
}

fn mkdir_private(path: &Path) -> Result<(), ArchiveError> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(io_err("cannot create directory", path)(e)),
    }
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), ArchiveError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("cannot create", path))?;
    f.write_all(data).map_err(io_err("cannot write", path))
}

impl BuildDir {
    /// Creates `<tmp_dir>/vmcore-report.XXXXXX/<name>/` with `version.txt` and the sos
    /// directories.
    pub fn create(tmp_dir: &Path, name: &str) -> Result<BuildDir, ArchiveError> {
        if validate_rel_path(name).is_err() || name.contains('/') {
            return Err(ArchiveError::BadPath(name.to_string()));
        }
        let tmp = tempfile::Builder::new()
            .prefix("vmcore-report.")
            .tempdir_in(tmp_dir)
            .map_err(io_err("cannot create a private directory in", tmp_dir))?;
        // tempfile makes it 0700 already; say so explicitly in case that ever changes
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700))
            .map_err(io_err("cannot set permissions on", tmp.path()))?;
        let dir = tmp.path().join(name);
        mkdir_private(&dir)?;
        let b = BuildDir {
            tmp,
            dir,
            name: name.to_string(),
        };
        for d in ["sos_reports", "sos_logs", "plugins"] {
            mkdir_private(&b.dir.join(d))?;
        }
        b.write_file(
            "version.txt",
            format!("vmcore-report: {}\n", env!("CARGO_PKG_VERSION")).as_bytes(),
        )?;
        Ok(b)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The archive's root directory in the build tree.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `rel` (validated, relative to the archive root), creating its directories.
    pub fn write_file(&self, rel: &str, data: &[u8]) -> Result<(), ArchiveError> {
        let path = self.entry_path(rel)?;
        write_private(&path, data)
    }

    /// Makes `rel` (validated, relative to the archive root) a symbolic link to `target`,
    /// creating its directories. The target must stay in the archive
    /// ([`super::plugin::validate_link_target`]); an existing entry is never replaced.
    pub fn symlink(&self, rel: &str, target: &str) -> Result<(), ArchiveError> {
        super::plugin::validate_link_target(rel, target)
            .map_err(|e| ArchiveError::BadPath(e.message))?;
        let path = self.entry_path(rel)?;
        std::os::unix::fs::symlink(target, &path).map_err(io_err("cannot create the link", &path))
    }

    /// The build-tree path of the archive path `rel` (validated), its directories created.
    fn entry_path(&self, rel: &str) -> Result<PathBuf, ArchiveError> {
        let rel = validate_rel_path(rel).map_err(|e| ArchiveError::BadPath(e.message))?;
        let mut cur = self.dir.clone();
        let comps: Vec<&str> = rel.split('/').collect();
        let (last, parents) = comps
            .split_last()
            .ok_or_else(|| ArchiveError::BadPath(rel.to_string()))?;
        for c in parents {
            cur.push(c);
            mkdir_private(&cur)?;
        }
        cur.push(last);
        Ok(cur)
    }

    /// A sink for plugin output into this tree.
    pub fn sink(&self) -> DirSink<'_> {
        DirSink { dir: self }
    }

    /// `--build`: keeps the tree and returns the archive root's path.
    pub fn keep(self) -> PathBuf {
        let _root = self.tmp.keep();
        self.dir
    }

    /// Packs the tree into `<out_dir>/<name><ext>`, removes the tree, and returns the archive's
    /// path. Deterministic when `SOURCE_DATE_EPOCH` is set.
    pub fn pack(self, out_dir: &Path, compression: Compression) -> Result<PathBuf, ArchiveError> {
        self.pack_with(out_dir, compression, deterministic_epoch())
    }

    /// [`BuildDir::pack`] with the fixed mtime given (`None`: the files' own times and owners).
    pub fn pack_with(
        self,
        out_dir: &Path,
        compression: Compression,
        epoch: Option<u64>,
    ) -> Result<PathBuf, ArchiveError> {
        let final_path = out_dir.join(format!("{}{}", self.name, compression.extension()));
        let part = tempfile::Builder::new()
            .prefix(&format!(".{}.", self.name))
            .suffix(".part")
            .tempfile_in(out_dir)
            .map_err(io_err("cannot create", out_dir))?;
        let file = part.reopen().map_err(io_err("cannot open", part.path()))?;
        let tar_bound =
            tar_size_bound(&self.dir, &self.name).map_err(io_err("cannot read", &self.dir))?;
        let mut enc = Encoder::new(file, compression, tar_bound)
            .map_err(io_err("cannot start the compressor for", part.path()))?;
        write_tar(&mut enc, &self.dir, &self.name, epoch)
            .map_err(io_err("cannot write", part.path()))?;
        let file = enc.finish().map_err(io_err("cannot write", part.path()))?;
        file.sync_all()
            .map_err(io_err("cannot write", part.path()))?;
        part.persist_noclobber(&final_path)
            .map_err(|e| io_err("cannot rename into", &final_path)(e.error))?;
        Ok(final_path)
    }
}

/// Plugin output into a [`BuildDir`].
pub struct DirSink<'a> {
    dir: &'a BuildDir,
}

impl OutputSink for DirSink<'_> {
    fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), PluginError> {
        self.dir
            .write_file(path, data)
            .map_err(|e| PluginError::new(e.code(), e.to_string()))
    }

    fn write_symlink(&mut self, path: &str, target: &str) -> Result<(), PluginError> {
        self.dir
            .symlink(path, target)
            .map_err(|e| PluginError::new(e.code(), e.to_string()))
    }
}

/// A compressing writer whose trailer is written by `finish`.
enum Encoder {
    Xz(xz2::write::XzEncoder<File>),
    Gzip(flate2::write::GzEncoder<File>),
    Plain(File),
}

impl Encoder {
    /// `tar_bound`: an upper bound of the bytes the tar stream will have.
    fn new(file: File, c: Compression, tar_bound: u64) -> io::Result<Encoder> {
        Ok(match c {
            Compression::Xz => Encoder::Xz(xz2::write::XzEncoder::new_stream(
                file,
                xz_stream(tar_bound)?,
            )),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::new(6),
            )),
            Compression::None => Encoder::Plain(file),
        })
    }
    fn finish(self) -> io::Result<File> {
        match self {
            Encoder::Xz(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Plain(mut f) => {
                f.flush()?;
                Ok(f)
            }
        }
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Xz(e) => e.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Plain(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Xz(e) => e.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Plain(f) => f.flush(),
        }
    }
}

/// What an entry of the build tree is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// A symbolic link and its target, stored as a link (never followed).
    Symlink(String),
}

/// The tree's entries, relative paths with `/`, directories before their contents, in archive
/// order: `version.txt`, `sos_reports/`, `sos_logs/`, then the rest sorted.
pub fn archive_order(root: &Path) -> io::Result<Vec<(String, EntryKind)>> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<(String, EntryKind)>) -> io::Result<()> {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let mut names: Vec<String> = Vec::new();
        for e in fs::read_dir(&dir)? {
            let e = e?;
            match e.file_name().into_string() {
                Ok(n) => names.push(n),
                Err(n) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("non-UTF-8 name {n:?} in the build tree"),
                    ));
                }
            }
        }
        names.sort();
        for n in names {
            let p = if rel.is_empty() {
                n
            } else {
                format!("{rel}/{n}")
            };
            // symlink_metadata: the tree holds only what we wrote; never follow a link out of it
            let md = fs::symlink_metadata(root.join(&p))?;
            if md.is_dir() {
                out.push((p.clone(), EntryKind::Dir));
                walk(root, &p, out)?;
            } else if md.is_file() {
                out.push((p, EntryKind::File));
            } else if md.file_type().is_symlink() {
                let target = fs::read_link(root.join(&p))?;
                let target = target.into_os_string().into_string().map_err(|t| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("non-UTF-8 link target {t:?} in the build tree"),
                    )
                })?;
                out.push((p, EntryKind::Symlink(target)));
            }
        }
        Ok(())
    }
    let mut all = Vec::new();
    walk(root, "", &mut all)?;
    let rank = |p: &str| {
        let top = p.split('/').next().unwrap_or(p);
        match top {
            "version.txt" => 0,
            "sos_reports" => 1,
            "sos_logs" => 2,
            _ => 3,
        }
    };
    // a stable sort keeps the walk's order (parents first, names sorted) within each rank
    all.sort_by_key(|(p, _)| rank(p));
    Ok(all)
}

/// The xz stream sos writes (`xz -3`: LZMA2 preset 3, CRC64 check), with the dictionary bounded
/// by the data.
///
/// Preset 3's 4 MiB dictionary makes liblzma's match finder allocate about 30 MB (the window,
/// the hash table and the hash chains all scale with the dictionary) and touch a good part of
/// it, while a report's tar stream is usually a few hundred kilobytes. A dictionary at least as
/// large as the whole input loses no match (no match can reach farther back than the input's
/// start), so it is cut to the next power of two at or above `tar_bound`, between liblzma's 4 KiB
/// minimum and the preset's 4 MiB. Every other parameter is preset 3's. The result is an
/// ordinary `.xz` file (the dictionary size is in its LZMA2 filter properties) that `xz -d`,
/// `tar -xJf` and sos read, and it needs less memory to decompress, not more.
fn xz_stream(tar_bound: u64) -> io::Result<xz2::stream::Stream> {
    const PRESET_DICT: u64 = 4 << 20;
    const MIN_DICT: u64 = 4 << 10;
    let dict = tar_bound
        .checked_next_power_of_two()
        .unwrap_or(PRESET_DICT)
        .clamp(MIN_DICT, PRESET_DICT);
    let mut opts = xz2::stream::LzmaOptions::new_preset(3).map_err(io::Error::other)?;
    opts.dict_size(dict as u32);
    let mut filters = xz2::stream::Filters::new();
    filters.lzma2(&opts);
    xz2::stream::Stream::new_stream_encoder(&filters, xz2::stream::Check::Crc64)
        .map_err(io::Error::other)
}

/// An upper bound of the size of the tar stream [`write_tar`] writes for `root`: per entry a
/// header block, a GNU long-name header and its name blocks when the path is long, and the
/// contents rounded up to 512-byte blocks; then the two zero blocks that end the archive.
fn tar_size_bound(root: &Path, name: &str) -> io::Result<u64> {
    let block = |n: u64| n.div_ceil(512).saturating_mul(512);
    let entry = |path_len: usize, size: u64| {
        1024u64
            .saturating_add(block(path_len as u64 + 1))
            .saturating_add(block(size))
    };
    let mut total = entry(name.len() + 1, 0).saturating_add(1024);
    for (rel, kind) in archive_order(root)? {
        let size = match &kind {
            EntryKind::File => fs::symlink_metadata(root.join(&rel))?.len(),
            // a long target takes a GNU long-link header and its name blocks
            EntryKind::Symlink(t) => 1024 + t.len() as u64 + 1,
            EntryKind::Dir => 0,
        };
        total = total.saturating_add(entry(name.len() + 1 + rel.len() + 1, size));
    }
    Ok(total)
}

fn write_tar(w: &mut dyn Write, root: &Path, name: &str, epoch: Option<u64>) -> io::Result<()> {
    let mut tar = tar::Builder::new(w);
    let mut top = dir_header(root, epoch)?;
    tar.append_data(&mut top, format!("{name}/"), io::empty())?;
    for (rel, kind) in archive_order(root)? {
        let path = root.join(&rel);
        match kind {
            EntryKind::Dir => {
                let mut h = dir_header(&path, epoch)?;
                tar.append_data(&mut h, format!("{name}/{rel}/"), io::empty())?;
            }
            EntryKind::File => {
                let f = File::open(&path)?;
                let md = f.metadata()?;
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(md.len());
                h.set_mode(0o600);
                set_owner_time(&mut h, &md, epoch);
                tar.append_data(&mut h, format!("{name}/{rel}"), f)?;
            }
            EntryKind::Symlink(target) => {
                let md = fs::symlink_metadata(&path)?;
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                set_owner_time(&mut h, &md, epoch);
                tar.append_link(&mut h, format!("{name}/{rel}"), &target)?;
            }
        }
    }
    tar.finish()
}

fn dir_header(path: &Path, epoch: Option<u64>) -> io::Result<tar::Header> {
    let md = fs::metadata(path)?;
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o700);
    set_owner_time(&mut h, &md, epoch);
    Ok(h)
}

fn set_owner_time(h: &mut tar::Header, md: &fs::Metadata, epoch: Option<u64>) {
    match epoch {
        Some(t) => {
            h.set_mtime(t);
            h.set_uid(0);
            h.set_gid(0);
        }
        None => {
            h.set_mtime(u64::try_from(md.mtime()).unwrap_or(0));
            h.set_uid(u64::from(md.uid()));
            h.set_gid(u64::from(md.gid()));
        }
    }
}

/// The hex SHA-256 of a file, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String, ArchiveError> {
    let mut f = File::open(path).map_err(io_err("cannot open", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err("cannot read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Writes `<path>.sha256` (the digest and a newline) and returns the digest.
pub fn write_checksum(path: &Path) -> Result<(String, PathBuf), ArchiveError> {
    let digest = sha256_file(path)?;
    let mut name = path.as_os_str().to_owned();
    name.push(".sha256");
    let sum_path = PathBuf::from(name);
    write_private(&sum_path, format!("{digest}\n").as_bytes())?;
    Ok((digest, sum_path))
}

/// The encrypted archive's name: `secured-<name>.gpg` beside it.
pub fn encrypted_path(archive: &Path) -> PathBuf {
    let file = archive
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    archive.with_file_name(format!("secured-{file}.gpg"))
}

/// Encrypts `archive` with gpg as sos does and returns the `.gpg` path. The passphrase goes to gpg
/// through a pipe on its standard input (`--passphrase-fd 0`), never on its command line. The
/// output is written under a temporary name and renamed when gpg succeeded; on failure nothing
/// is left behind and the plain archive is untouched.
pub fn encrypt(archive: &Path, how: &Encryption) -> Result<PathBuf, ArchiveError> {
    let out = encrypted_path(archive);
    let part = out.with_file_name(format!(
        ".{}.{}.part",
        out.file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default(),
        random_suffix()
    ));
    let mut cmd = Command::new("gpg");
    cmd.arg("--batch").arg("-o").arg(&part);
    match how {
        Encryption::Key(key) => {
            // sos's command; `--auto-key-locate local` keeps gpg from looking the key up on the
            // network (WKD), which would stall an unattended run
            cmd.args([
                "--auto-key-locate",
                "local",
                "--trust-model",
                "always",
                "-e",
                "-r",
                key,
            ]);
            cmd.stdin(Stdio::null());
        }
        Encryption::Pass(_) => {
            cmd.args(["--pinentry-mode", "loopback", "--passphrase-fd", "0", "-c"]);
            cmd.stdin(Stdio::piped());
        }
    }
    cmd.arg(archive)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ArchiveError::GpgMissing),
        Err(e) => return Err(io_err("cannot run gpg for", archive)(e)),
    };
    if let (Encryption::Pass(pass), Some(mut stdin)) = (how, child.stdin.take()) {
        // gpg reads one line from the descriptor; dropping stdin closes the pipe
        let _ = stdin.write_all(pass.as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let output = child
        .wait_with_output()
        .map_err(io_err("cannot run gpg for", archive))?;
    if !output.status.success() {
        let _ = fs::remove_file(&part);
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(ArchiveError::GpgFailed {
            status: output.status.to_string(),
            stderr,
        });
    }
    let _ = fs::set_permissions(&part, fs::Permissions::from_mode(0o600));
    fs::rename(&part, &out).map_err(io_err("cannot rename into", &out))?;
    Ok(out)
}

/// The file system type holding `path`, from `/proc/self/mountinfo` (the longest mount point
/// that is a prefix of the path). `unknown` if it cannot be told.
pub fn fs_type(path: &Path) -> String {
    let Ok(path) = fs::canonicalize(path) else {
        return "unknown".into();
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return "unknown".into();
    };
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        // fields: id parent major:minor root mount-point options [optional...] - fstype source ...
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mp), Some(dash)) = (fields.get(4), fields.iter().position(|f| *f == "-")) else {
            continue;
        };
        let Some(fstype) = fields.get(dash + 1) else {
            continue;
        };
        let mp = mp.replace("\\040", " ").replace("\\011", "\t");
        if path.starts_with(&mp) && best.as_ref().is_none_or(|(l, _)| mp.len() >= *l) {
            best = Some((mp.len(), fstype.to_string()));
        }
    }
    best.map(|(_, t)| t).unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound holds for the tar `write_tar` really writes (long names included), and the
    /// bounded-dictionary xz stream round-trips through liblzma's decoder with a dictionary
    /// (read back from the stream) no larger than needed.
    #[test]
    fn tar_bound_and_bounded_xz_stream() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sos_commands/kernel")).unwrap();
        fs::write(root.join("sos_commands/kernel/uname_-a"), b"Linux h 6.1\n").unwrap();
        let long = "x".repeat(150);
        fs::write(root.join(&long), vec![7u8; 70_000]).unwrap();
        let mut tar = Vec::new();
        write_tar(&mut tar, root, "sosvmcore-h-2026-01-01-abcdefg", Some(0)).unwrap();
        let bound = tar_size_bound(root, "sosvmcore-h-2026-01-01-abcdefg").unwrap();
        assert!(bound >= tar.len() as u64, "{bound} < {}", tar.len());

        let mut enc = xz2::write::XzEncoder::new_stream(Vec::new(), xz_stream(bound).unwrap());
        enc.write_all(&tar).unwrap();
        let xz = enc.finish().unwrap();
        let mut back = Vec::new();
        io::Read::read_to_end(&mut xz2::read::XzDecoder::new(&xz[..]), &mut back).unwrap();
        assert_eq!(back, tar);
        // Block header (after the 12-byte stream header): size byte, flags (one filter), filter
        // id 0x21 (LZMA2), property size 1, then the dictionary-size byte: 2^(n/2+12) rounded.
        let b = &xz[12..];
        assert_eq!(b[1] & 3, 0, "one filter");
        let (id, prop) = if b[1] & 0xC0 == 0 {
            (b[2], b[4])
        } else {
            (0, 0)
        };
        assert_eq!(id, 0x21, "LZMA2");
        let dict = (2 | u64::from(prop & 1)) << (prop / 2 + 11);
        assert!(dict >= tar.len() as u64 && dict <= 4 << 20, "dict {dict}");
    }

    /// A root symlink is stored as a link (`tar -tvf` shows `l` and its target), inside the
    /// size bound, and a link whose target would leave the archive is refused.
    #[test]
    fn symlinks_are_stored_as_links() {
        let tmp = tempfile::tempdir().unwrap();
        let b = BuildDir::create(tmp.path(), "sosvmcore-h-2026-01-01-abcdefg").unwrap();
        b.write_file("sos_commands/kernel/lsmod", b"Module Size Used by\n")
            .unwrap();
        b.symlink("lsmod", "sos_commands/kernel/lsmod").unwrap();
        assert!(b.symlink("evil", "../outside").is_err());
        assert!(
            b.symlink("lsmod", "sos_commands/kernel/lsmod").is_err(),
            "no overwrite"
        );
        let mut tar = Vec::new();
        write_tar(&mut tar, b.dir(), b.name(), Some(0)).unwrap();
        let bound = tar_size_bound(b.dir(), b.name()).unwrap();
        assert!(bound >= tar.len() as u64);
        let mut a = tar::Archive::new(&tar[..]);
        let mut found = false;
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            if e.path().unwrap().to_str() == Some("sosvmcore-h-2026-01-01-abcdefg/lsmod") {
                assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
                assert_eq!(
                    e.link_name().unwrap().unwrap().to_str(),
                    Some("sos_commands/kernel/lsmod")
                );
                found = true;
            }
        }
        assert!(found, "the link is in the tar");
        // and GNU tar, where installed, lists it as a link
        let file = tmp.path().join("t.tar");
        fs::write(&file, &tar).unwrap();
        match Command::new("tar").arg("-tvf").arg(&file).output() {
            Ok(o) if o.status.success() => {
                let list = String::from_utf8_lossy(&o.stdout).into_owned();
                let line = list
                    .lines()
                    .find(|l| l.contains("/lsmod -> "))
                    .unwrap_or_else(|| panic!("no link in:\n{list}"));
                assert!(line.starts_with('l'), "{line}");
                assert!(
                    line.ends_with("/lsmod -> sos_commands/kernel/lsmod"),
                    "{line}"
                );
            }
            _ => eprintln!("SKIP: no usable tar binary to list the archive"),
        }
    }

    #[test]
    fn names_are_sanitized_like_sos() {
        assert_eq!(
            archive_name("web01.example.com", None, "2026-11-22", "abcdefg"),
            "sosvmcore-web01.example.com-2026-11-22-abcdefg"
        );
        assert_eq!(
            archive_name(
                "host_1 (prod)/x",
                Some("case #42!"),
                "2026-11-22",
                "zzzzzzz"
            ),
            "sosvmcore-host1prodx-case42-2026-11-22-zzzzzzz"
        );
        assert_eq!(
            archive_name("ÿ_/", Some("_"), "2026-01-02", "aaaaaaa"),
            "sosvmcore-unknown-2026-01-02-aaaaaaa"
        );
        assert_eq!(archive_name("", None, "d", "s"), "sosvmcore-unknown-d-s");
    }

    #[test]
    fn suffix_is_seven_lowercase_letters() {
        for _ in 0..50 {
            let s = random_suffix();
            assert_eq!(s.len(), 7);
            assert!(s.bytes().all(|b| b.is_ascii_lowercase()), "{s}");
        }
    }

    #[test]
    fn encrypted_name_has_sos_prefix_and_suffix() {
        assert_eq!(
            encrypted_path(Path::new("/var/tmp/sosvmcore-h-2026-01-01-abcdefg.tar.xz")),
            PathBuf::from("/var/tmp/secured-sosvmcore-h-2026-01-01-abcdefg.tar.xz.gpg")
        );
    }

    #[test]
    fn debug_never_shows_the_passphrase() {
        let s = format!("{:?}", Encryption::Pass("hunter2".into()));
        assert!(!s.contains("hunter2"));
    }
}
