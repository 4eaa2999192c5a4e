//! Test-only plugins, compiled only with the `test-plugins` cargo feature. They are optional
//! (never run unless named with `-e`/`-o`) and exercise the runner's isolation from the binary:
//! an error, a panic, an overrun, a partial result, a plugin that computes without ever reading
//! the dump.

use crate::report::plugin::{OptionValue, Plugin, PluginContext, PluginError, PluginOption};

/// Writes a file and succeeds.
pub struct TestOk;
/// Returns an error.
pub struct TestFail;
/// Panics.
pub struct TestPanic;
/// Sleeps `test_sleep.ms` milliseconds.
pub struct TestSleep;
/// Records `test_partial.count` not-dumped errors and finishes.
pub struct TestPartial;
/// Spins `test_spin.ms` milliseconds without reading the dump, then writes a file.
pub struct TestSpin;

/// A non-negative integer option (its default applies when not given; negative counts as 0).
fn count_option(ctx: &PluginContext<'_>, name: &str) -> u64 {
    match ctx.option(name) {
        Some(OptionValue::Int(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

pub static ALL: &[&dyn Plugin] = &[
    &TestOk,
    &TestFail,
    &TestPanic,
    &TestSleep,
    &TestPartial,
    &TestSpin,
];

impl Plugin for TestOk {
    fn name(&self) -> &'static str {
        "test_ok"
    }
    fn description(&self) -> &'static str {
        "test only: writes hello.txt"
    }
    fn default_enabled(&self) -> bool {
        false
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        ctx.write_text("hello.txt", "hello\n")
    }
}

impl Plugin for TestFail {
    fn name(&self) -> &'static str {
        "test_fail"
    }
    fn description(&self) -> &'static str {
        "test only: fails"
    }
    fn default_enabled(&self) -> bool {
        false
    }
    fn collect(&self, _ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        Err(PluginError::new("test-failure", "this plugin always fails"))
    }
}

impl Plugin for TestPanic {
    fn name(&self) -> &'static str {
        "test_panic"
    }
    fn description(&self) -> &'static str {
        "test only: panics"
    }
    fn default_enabled(&self) -> bool {
        false
    }
    fn collect(&self, _ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        panic!("test_panic panics on purpose")
    }
}

impl Plugin for TestSleep {
    fn name(&self) -> &'static str {
        "test_sleep"
    }
    fn description(&self) -> &'static str {
        "test only: sleeps"
    }
    fn default_enabled(&self) -> bool {
        false
    }
    fn options(&self) -> Vec<PluginOption> {
        vec![PluginOption {
            name: "ms",
            description: "milliseconds to sleep",
            default: OptionValue::Int(10),
        }]
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let ms = count_option(ctx, "ms");
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Ok(())
    }
}

impl Plugin for TestPartial {
    fn name(&self) -> &'static str {
        "test_partial"
    }
    fn description(&self) -> &'static str {
        "test only: records an error"
    }
    fn default_enabled(&self) -> bool {
        false
    }
    fn options(&self) -> Vec<PluginOption> {
        vec![PluginOption {
            name: "count",
            description: "how many filtered-out pages to record, one page apart",
            default: OptionValue::Int(1),
        }]
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        ctx.write_text("partial.txt", "some\n")?;
        let count = count_option(ctx, "count");
        for i in 0..count {
            let va = 0xffff_8880_0010_0000 + i * 0x1000;
            ctx.record_error(
                PluginError::new(
                    "not-dumped",
                    format!("the page at {va:#x} was filtered out"),
                )
                .at(va),
            );
        }
        Ok(())
    }
}

impl Plugin for TestSpin {
    fn name(&self) -> &'static str {
        "test_spin"
    }
    fn description(&self) -> &'static str {
        "test only: computes without reading the dump, then writes late.txt"
    }
    fn default_enabled(&self) -> bool {
        false
    }
    fn options(&self) -> Vec<PluginOption> {
        vec![PluginOption {
            name: "ms",
            description: "milliseconds to spin",
            default: OptionValue::Int(60_000),
        }]
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let ms = count_option(ctx, "ms");
        let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        ctx.write_text("late.txt", &format!("{x}\n"))
    }
}
