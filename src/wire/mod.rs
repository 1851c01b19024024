//! Pure wire formats: zero-copy views and owned representations.
//!
//! The contract, borrowed from smoltcp: `Packet::new_checked` validates every
//! length an accessor reads, after which no accessor panics; an owned `Repr`
//! has `parse` and `emit`. Every parser here is total — any byte string gives a
//! value or an error — and has a fuzz target under `fuzz/`.
#![forbid(unsafe_code)]

/// An open code space: named values plus `Unknown(raw)` for everything else,
/// so a value we do not know survives a parse/emit round trip (and can be
/// rejected verbatim). Defined before the modules so they all see it.
macro_rules! enum_with_unknown {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this codec does not know, kept verbatim.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

pub mod icmpv6;
pub mod ip;
pub mod l2tp;
pub mod ppp;
pub mod prefix;
