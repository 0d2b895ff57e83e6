//! Compile-fail tests: the type system, not the documentation, stops unsound
//! use. Each file under `tests/ui/` must fail to compile with the recorded error.

#[test]
fn unsound_uses_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
