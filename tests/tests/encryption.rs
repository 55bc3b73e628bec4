//! Passphrase-encrypted snapshots, checked with the `age` crate independently of rtwisted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::iter;

use rtwisted_tests::{Scratch, exchange, fails_with, text};

const PASSPHRASE: &str = "correct horse battery staple";
const TAP_MAGIC: &[u8] = b"\x89RTWTAP\n";

fn with_passphrase_file(scratch: &Scratch) -> String {
    std::fs::write(scratch.join("pass.txt"), format!("{PASSPHRASE}\n")).unwrap();
    "pass.txt".to_owned()
}

/// Decrypts with the age crate alone, as the `age` tool would.
fn age_decrypt(bytes: &[u8], passphrase: &str) -> Vec<u8> {
    let decryptor = age::Decryptor::new(bytes).unwrap();
    assert!(decryptor.is_scrypt());
    let identity =
        age::scrypt::Identity::new(age::secrecy::SecretString::from(passphrase.to_owned()));
    let mut reader = decryptor
        .decrypt(iter::once(&identity as &dyn age::Identity))
        .unwrap();
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).unwrap();
    plain
}

#[test]
fn save_encrypt_writes_an_age_file_that_age_itself_opens() {
    let scratch = Scratch::new();
    let pass = with_passphrase_file(&scratch);
    let output = scratch.rtap_ok(&["save", "echo", "--encrypt", "--passphrase-file", &pass]);
    assert!(
        text(&output.stdout).starts_with("saved encrypted tap application 'echo' to echo.etap")
    );
    let bytes = std::fs::read(scratch.join("echo.etap")).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(
        !bytes.windows(8).any(|w| w == b"tcp:7001"),
        "the endpoint is visible in the file"
    );
    let plain = age_decrypt(&bytes, PASSPHRASE);
    assert!(plain.starts_with(TAP_MAGIC));

    let doc = scratch.inspect_json_with(&["echo.etap", "--passphrase-file", &pass]);
    assert_eq!(doc["encrypted"], true);
    assert_eq!(
        doc["services"]["children"][0]["fields"]["endpoint"],
        "tcp:7001"
    );
}

#[test]
fn the_source_style_encrypts_too() {
    let scratch = Scratch::new();
    let pass = with_passphrase_file(&scratch);
    scratch.rtap_ok(&[
        "save",
        "echo",
        "--style",
        "tas",
        "--encrypt",
        "--passphrase-file",
        &pass,
    ]);
    let plain = age_decrypt(
        &std::fs::read(scratch.join("echo.etas")).unwrap(),
        PASSPHRASE,
    );
    let doc: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(doc["rtwisted"], "snapshot");
}

#[test]
fn a_wrong_or_missing_passphrase_is_one_clear_line() {
    let scratch = Scratch::new();
    let pass = with_passphrase_file(&scratch);
    scratch.rtap_ok(&["save", "echo", "--encrypt", "--passphrase-file", &pass]);
    std::fs::write(scratch.join("wrong.txt"), "not it\n").unwrap();

    let output = scratch.rtap(&["inspect", "echo.etap", "--passphrase-file", "wrong.txt"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "rtap: error: cannot load snapshot 'echo.etap': wrong passphrase (or the encrypted file is damaged)\n"
    );
    let output = scratch.rtap(&["inspect", "echo.etap"]);
    let stderr = fails_with(
        &output,
        1,
        "a passphrase is needed and there is no terminal to ask",
    );
    assert!(
        stderr.contains("use --passphrase-file FILE or set RTWISTED_PASSPHRASE"),
        "{stderr}"
    );
    let output = scratch.rtap(&["inspect", "echo.etap", "--passphrase-file", "missing.txt"]);
    assert!(
        text(&output.stderr)
            .contains("cannot read the passphrase file 'missing.txt': no such file")
    );
}

#[test]
fn edits_keep_the_snapshot_encrypted_and_the_variable_works() {
    let scratch = Scratch::new();
    let pass = with_passphrase_file(&scratch);
    scratch.rtap_ok(&["save", "echo", "--encrypt", "--passphrase-file", &pass]);
    let output = scratch
        .command("rtap")
        .args(["set", "echo.etap", "echo", "endpoint=tcp:7010"])
        .env("RTWISTED_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let plain = age_decrypt(
        &std::fs::read(scratch.join("echo.etap")).unwrap(),
        PASSPHRASE,
    );
    assert!(plain.starts_with(TAP_MAGIC));
    assert!(plain.windows(8).any(|w| w == b"tcp:7010"));
}

#[test]
fn convert_decrypts_and_encrypts() {
    let scratch = Scratch::new();
    let pass = with_passphrase_file(&scratch);
    scratch.rtap_ok(&["save", "echo", "--encrypt", "--passphrase-file", &pass]);
    // `rtap convert FROM TO EXTRA... --passphrase-file PASS`; the bytes written to TO.
    let convert = |from: &str, to: &str, extra: &[&str]| {
        let mut args = vec!["convert", from, to];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--passphrase-file", &pass]);
        scratch.rtap_ok(&args);
        std::fs::read(scratch.join(to)).unwrap()
    };
    assert!(convert("echo.etap", "plain.tap", &[]).starts_with(TAP_MAGIC));
    let back = convert("plain.tap", "back.etas", &[]);
    assert!(age_decrypt(&back, PASSPHRASE).starts_with(b"{"));
    let kept = convert("back.etas", "kept.snapshot", &["--style", "tap"]);
    assert!(kept.starts_with(b"age-encryption.org/v1\n"));
    let open = convert(
        "back.etas",
        "open.snapshot",
        &["--style", "tap", "--decrypt"],
    );
    assert!(open.starts_with(TAP_MAGIC));
}

#[test]
fn an_excessive_work_factor_is_refused_before_any_work() {
    let scratch = Scratch::new();
    let pass = with_passphrase_file(&scratch);
    scratch.rtap_ok(&["save", "echo", "--encrypt", "--passphrase-file", &pass]);
    let bytes = std::fs::read(scratch.join("echo.etap")).unwrap();
    // The scrypt stanza ends with the work factor: "-> scrypt SALT 10\n". Make it 30.
    let header_end = bytes.windows(4).position(|w| w == b"\n---").unwrap();
    let header = String::from_utf8(bytes[..header_end].to_vec()).unwrap();
    let hostile = header.replacen(" 10\n", " 30\n", 1);
    assert_ne!(hostile, header);
    let mut forged = hostile.into_bytes();
    forged.extend_from_slice(&bytes[header_end..]);
    std::fs::write(scratch.join("hostile.etap"), forged).unwrap();
    let output = scratch.rtap(&["inspect", "hostile.etap", "--passphrase-file", &pass]);
    fails_with(
        &output,
        1,
        "asks for scrypt work factor 30, above the limit of 20",
    );
}

#[test]
fn rtwistd_runs_an_encrypted_snapshot_and_saves_the_shutdown_encrypted() {
    let scratch = Scratch::new();
    let pass = with_passphrase_file(&scratch);
    scratch.save_on_loopback("echo", &["--encrypt", "--passphrase-file", &pass]);
    let mut daemon =
        scratch.spawn_rtwistd(&["-n", "-e", "-f", "echo.etap", "--passphrase-file", &pass]);
    let address = daemon.listening_address();
    assert_eq!(exchange(address, b"secret echo"), b"secret echo");
    daemon.stop();
    let bytes = std::fs::read(scratch.join("echo-shutdown.etap")).unwrap();
    assert!(age_decrypt(&bytes, PASSPHRASE).starts_with(TAP_MAGIC));
}

#[test]
fn the_default_work_factor_is_one_the_loader_accepts() {
    let scratch = Scratch::new();
    let pass = with_passphrase_file(&scratch);
    let output = scratch
        .command("rtap")
        .args(["save", "echo", "--encrypt", "--passphrase-file", &pass])
        .env_remove("RTWISTED_SCRYPT_WORK_FACTOR")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let bytes = std::fs::read(scratch.join("echo.etap")).unwrap();
    let header_end = bytes.windows(4).position(|w| w == b"\n---").unwrap();
    let header = String::from_utf8(bytes[..header_end].to_vec()).unwrap();
    let stanza = header
        .lines()
        .find(|line| line.starts_with("-> scrypt "))
        .unwrap();
    let factor: u8 = stanza.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(factor, 17, "{stanza}");
    let doc = scratch.inspect_json_with(&["echo.etap", "--passphrase-file", &pass]);
    assert_eq!(doc["encrypted"], true);
}
