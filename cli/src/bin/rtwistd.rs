//! `rtwistd`: run an rtwisted application until a signal.
fn main() -> std::process::ExitCode {
    rtwisted_cli::rtwistd::main()
}
