//! The registry refuses two registrations of one tag, naming both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Only registered, never built: the clash is all this test needs.
#[allow(dead_code)]
struct First;
rtwisted_core::register_type!(service First = "test.Twice", version 1);

#[allow(dead_code)]
struct Second;
rtwisted_core::register_type!(service Second = "test.Twice", version 1);

#[test]
fn two_types_under_one_tag_are_refused_naming_both() {
    let error = rtwisted_core::registry::check().unwrap_err();
    assert_eq!(error.tag, "test.Twice");
    assert_eq!(
        error.to_string(),
        "the type tag 'test.Twice' is registered twice, by registry::First and by registry::Second: give one of them another tag"
    );
}
