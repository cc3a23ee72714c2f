//! Every macro form compiles (pass/) and every macro error reads as intended (fail/).
//! Regenerate the expected messages with `TRYBUILD=overwrite cargo test -p ppl-ui-tests` and
//! review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*.rs");
}
