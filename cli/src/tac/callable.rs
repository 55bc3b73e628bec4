//! The one shape of a Starlark value that a TAC file calls: Twisted's classes and
//! constructors, and the Python values whose call is refused with a reason.

/// Implements `StarlarkValue` (type name `$type_name`) for `$ty` with an `invoke` that runs
/// `$body`, in which `$this` is the value, `$args` the call's arguments and `$eval` the
/// evaluator; the value's other methods, if any, follow the body.
macro_rules! callable_value {
    (
        $type_name:literal,
        $ty:ident,
        |$this:ident, $args:ident, $eval:ident| $body:block
        $(, $($methods:tt)*)?
    ) => {
        #[starlark::values::starlark_value(type = $type_name)]
        impl<'v> starlark::values::StarlarkValue<'v> for $ty {
            fn invoke(
                &self,
                _me: starlark::values::Value<'v>,
                $args: &starlark::eval::Arguments<'v, '_>,
                $eval: &mut starlark::eval::Evaluator<'v, '_, '_>,
            ) -> starlark::Result<starlark::values::Value<'v>> {
                let $this = self;
                $body
            }

            $($($methods)*)?
        }
    };
}
pub(super) use callable_value;

/// The error of a refused call: `message` says why, and what a TAC file writes instead.
pub fn refused<T>(message: impl std::fmt::Display) -> starlark::Result<T> {
    Err(starlark::Error::new_other(anyhow::anyhow!("{message}")))
}
