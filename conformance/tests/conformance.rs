//! Runs the whole suite on every adapter of this workspace: one named test
//! per (adapter, case); unsupported cases show as ignored with the reason.

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let harnesses = conformance::harnesses::workspace_harnesses();
    let cases = conformance::suites::all();
    let conclusion = libtest_mimic::run(&args, conformance::trials(&harnesses, &cases));
    // Drop the harnesses before exiting: the Redis harness stops the
    // throwaway server it started.
    drop(harnesses);
    conclusion.exit();
}
