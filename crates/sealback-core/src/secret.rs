//! Secret types: zeroized on drop, redacted in `Debug`, compared in constant time.
//!
//! Nothing here implements `Display`, `Clone` is explicit where it exists, and the only way to
//! the bytes is a method named `expose_secret`, so that a reviewer can grep for every use.

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

macro_rules! fixed_secret {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Zeroize, ZeroizeOnDrop)]
        pub struct $name(Box<[u8; $len]>);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps bytes that already are a secret of this kind.
            pub fn from_bytes(bytes: [u8; $len]) -> Self {
                let mut bytes = bytes;
                let boxed = Box::new(bytes);
                bytes.zeroize();
                Self(boxed)
            }

            /// Copies from a slice; `None` when the length is wrong.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                let mut out = Box::new([0u8; $len]);
                if bytes.len() != $len {
                    return None;
                }
                out.copy_from_slice(bytes);
                Some(Self(out))
            }

            /// Fresh random bytes from a CSPRNG.
            pub fn random(rng: &mut impl CryptoRng) -> Self {
                let mut out = Box::new([0u8; $len]);
                rng.fill_bytes(&mut out[..]);
                Self(out)
            }

            /// The secret bytes. Every call site is a place where the secret is used.
            pub fn expose_secret(&self) -> &[u8; $len] {
                &self.0
            }

            /// An explicit copy (the type is deliberately not `Clone`).
            pub fn duplicate(&self) -> Self {
                Self(Box::new(*self.0))
            }
        }

        impl ConstantTimeEq for $name {
            fn ct_eq(&self, other: &Self) -> subtle::Choice {
                self.0[..].ct_eq(&other.0[..])
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.ct_eq(other).into()
            }
        }
        impl Eq for $name {}

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

fixed_secret!(
    /// A root key `K_e` of one key epoch: 256 bits from a CSPRNG.
    RootKey,
    32
);
fixed_secret!(
    /// A 256-bit key derived from a root key (data, metadata, content id, chunker) or from a
    /// protector secret.
    SubKey,
    32
);

/// The secret a protector contributes to unlock its keyslot: the recovery key's digits, a
/// passkey's PRF output, a vault's OPAQUE export key. Variable length, zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ProtectorSecret(Zeroizing<Vec<u8>>);

impl ProtectorSecret {
    /// Takes ownership of secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }
    /// The secret bytes.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for ProtectorSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ProtectorSecret(<redacted>)")
    }
}
