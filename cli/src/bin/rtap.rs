//! `rtap`: build and inspect rtwisted snapshots.
fn main() -> std::process::ExitCode {
    rtwisted_cli::rtap::main()
}
