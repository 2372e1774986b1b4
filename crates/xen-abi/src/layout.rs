//! Safe decoding and encoding of Xen ABI structures from and to bytes.
//!
//! Hypercall arguments live in guest memory: the hypervisor copies them out
//! once into a byte buffer and decodes that buffer field by field, never by
//! reinterpreting guest bytes as a Rust value. [`abi_struct!`] declares a
//! `#[repr(C)]` type (so `size_of`/`offset_of!` give the C layout of the
//! x86_64 ABI, which the per-module tests check against the headers) and
//! implements [`Abi`] for it: little-endian field reads at each field's
//! offset, padding ignored on decode and zeroed on encode.

/// A fixed-size little-endian value inside an ABI structure.
pub trait Field: Copy {
    /// Bytes this field occupies.
    const SIZE: usize;
    /// Decode from the first `SIZE` bytes of `b` (the caller checked the length).
    fn read(b: &[u8]) -> Self;
    /// Encode into the first `SIZE` bytes of `b` (the caller checked the length).
    fn write(self, b: &mut [u8]);
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            fn read(b: &[u8]) -> Self {
                let mut a = [0u8; core::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..Self::SIZE]);
                <$t>::from_le_bytes(a)
            }
            fn write(self, b: &mut [u8]) {
                b[..Self::SIZE].copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
int_field!(u8, u16, u32, u64, i8, i16, i32, i64);

impl<T: Field, const N: usize> Field for [T; N] {
    const SIZE: usize = T::SIZE * N;
    fn read(b: &[u8]) -> Self {
        core::array::from_fn(|i| T::read(&b[i * T::SIZE..]))
    }
    fn write(self, b: &mut [u8]) {
        for (i, v) in self.into_iter().enumerate() {
            v.write(&mut b[i * T::SIZE..]);
        }
    }
}

/// A structure of Xen's ABI with a fixed byte layout.
pub trait Abi: Sized {
    /// `sizeof` the C structure on x86_64.
    const SIZE: usize;
    /// Decode from the first [`Abi::SIZE`] bytes of `b`; `None` if `b` is shorter.
    fn read_from(b: &[u8]) -> Option<Self>;
    /// Encode into the first [`Abi::SIZE`] bytes of `b`, padding zeroed;
    /// `false` (and nothing written) if `b` is shorter.
    fn write_to(&self, b: &mut [u8]) -> bool;
    /// Encode into a new buffer of exactly [`Abi::SIZE`] bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![0u8; Self::SIZE];
        let ok = self.write_to(&mut v);
        debug_assert!(ok);
        v
    }
}

/// Declare a `#[repr(C)]` ABI structure whose fields are integers or arrays
/// of integers, and implement [`Abi`] for it.
#[macro_export]
macro_rules! abi_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* pub $f:ident : $t:ty ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $f: $t ),*
        }

        impl $crate::layout::Abi for $name {
            const SIZE: usize = ::core::mem::size_of::<$name>();

            fn read_from(b: &[u8]) -> Option<Self> {
                if b.len() < Self::SIZE {
                    return None;
                }
                Some(Self {
                    $( $f: <$t as $crate::layout::Field>::read(
                        &b[::core::mem::offset_of!($name, $f)..]
                    ) ),*
                })
            }

            fn write_to(&self, b: &mut [u8]) -> bool {
                if b.len() < Self::SIZE {
                    return false;
                }
                b[..Self::SIZE].fill(0);
                $( <$t as $crate::layout::Field>::write(
                    self.$f,
                    &mut b[::core::mem::offset_of!($name, $f)..],
                ); )*
                true
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::abi_struct! {
        /// Padding after `a` and after `c`, like many Xen structures.
        pub struct Sample {
            pub a: u16,
            pub b: u32,
            pub c: u8,
            pub d: u64,
            pub e: [u16; 3],
        }
    }

    #[test]
    fn roundtrip_and_padding() {
        assert_eq!(Sample::SIZE, 32);
        let s = Sample {
            a: 0x1234,
            b: 0xdead_beef,
            c: 7,
            d: u64::MAX - 1,
            e: [1, 2, 3],
        };
        let bytes = s.to_bytes();
        assert_eq!(&bytes[0..2], &[0x34, 0x12]);
        assert_eq!(&bytes[2..4], &[0, 0], "padding is zeroed");
        assert_eq!(&bytes[4..8], &[0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(bytes[8], 7);
        assert_eq!(&bytes[24..26], &[1, 0]);
        assert_eq!(Sample::read_from(&bytes), Some(s));
    }

    #[test]
    fn short_buffers_are_refused() {
        assert_eq!(Sample::read_from(&[0u8; 31]), None);
        let mut b = [0xffu8; 31];
        assert!(
            !Sample {
                a: 0,
                b: 0,
                c: 0,
                d: 0,
                e: [0; 3]
            }
            .write_to(&mut b)
        );
        assert_eq!(b, [0xffu8; 31], "nothing written on failure");
    }

    #[test]
    fn garbage_padding_is_ignored_on_decode() {
        let mut bytes = [0xaau8; 32];
        bytes[0..2].copy_from_slice(&5u16.to_le_bytes());
        let s = Sample::read_from(&bytes).unwrap();
        assert_eq!(s.a, 5);
        assert_eq!(s.c, 0xaa);
    }
}
