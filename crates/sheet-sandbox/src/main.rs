//! `foxflow-sheet-reader`: the child the import-worker runs to read one untrusted file. Not
//! meant to be run by hand; see `foxflow_sheet_sandbox`.

fn main() -> std::process::ExitCode {
    foxflow_sheet_sandbox::serve()
}
