//! Collections whose length is bounded while decoding: a hostile length field
//! is refused before a single element is read or a byte is allocated for it.
//!
//! postcard hands serde the length a message claims; serde's `Vec` visitor
//! preallocates from it (capped, but still up to a megabyte per field). These
//! types check the claimed count against their bound first, then count again
//! while reading, so no decoder of ours allocates more than its bound.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a bounded collection could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{len} items where at most {max} are allowed")]
pub struct BoundExceeded {
    pub len: usize,
    pub max: usize,
}

/// A `Vec<T>` of at most `MAX` items, on the wire and in memory.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BoundedVec<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    pub fn new(items: Vec<T>) -> Result<Self, BoundExceeded> {
        if items.len() > MAX {
            return Err(BoundExceeded {
                len: items.len(),
                max: MAX,
            });
        }
        Ok(Self(items))
    }

    pub fn empty() -> Self {
        Self(Vec::new())
    }

    pub fn into_vec(self) -> Vec<T> {
        self.0
    }

    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
}

impl<T, const MAX: usize> Deref for BoundedVec<T, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, const MAX: usize> TryFrom<Vec<T>> for BoundedVec<T, MAX> {
    type Error = BoundExceeded;
    fn try_from(items: Vec<T>) -> Result<Self, BoundExceeded> {
        Self::new(items)
    }
}

impl<T: fmt::Debug, const MAX: usize> fmt::Debug for BoundedVec<T, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize, const MAX: usize> Serialize for BoundedVec<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

struct BoundedVecVisitor<T, const MAX: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVecVisitor<T, MAX> {
    type Value = BoundedVec<T, MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence of at most {MAX} items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let claimed = seq.size_hint().unwrap_or(0);
        if claimed > MAX {
            return Err(de::Error::invalid_length(claimed, &self));
        }
        let mut items = Vec::with_capacity(claimed);
        while let Some(item) = seq.next_element()? {
            if items.len() == MAX {
                return Err(de::Error::invalid_length(MAX + 1, &self));
            }
            items.push(item);
        }
        Ok(BoundedVec(items))
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedVec<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(BoundedVecVisitor::<T, MAX>(PhantomData))
    }
}

/// An opaque byte string of at most `MAX` bytes (DER keys, signatures,
/// ciphertexts), encoded as postcard bytes: a length then the bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BoundedBytes<const MAX: usize>(Vec<u8>);

impl<const MAX: usize> BoundedBytes<MAX> {
    pub fn new(bytes: Vec<u8>) -> Result<Self, BoundExceeded> {
        if bytes.len() > MAX {
            return Err(BoundExceeded {
                len: bytes.len(),
                max: MAX,
            });
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl<const MAX: usize> fmt::Debug for BoundedBytes<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl<const MAX: usize> Serialize for BoundedBytes<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

struct BoundedBytesVisitor<const MAX: usize>;

impl<'de, const MAX: usize> Visitor<'de> for BoundedBytesVisitor<MAX> {
    type Value = BoundedBytes<MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at most {MAX} bytes")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
        if bytes.len() > MAX {
            return Err(E::invalid_length(bytes.len(), &self));
        }
        Ok(BoundedBytes(bytes.to_vec()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        // Self-describing formats may send bytes as a sequence.
        let items = BoundedVecVisitor::<u8, MAX>(PhantomData).visit_seq(seq)?;
        Ok(BoundedBytes(items.into_vec()))
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedBytes<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(BoundedBytesVisitor::<MAX>)
    }
}

/// A UTF-8 string of at most `MAX` bytes (descriptions, reasons).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BoundedText<const MAX: usize>(String);

impl<const MAX: usize> BoundedText<MAX> {
    pub fn new(text: impl Into<String>) -> Result<Self, BoundExceeded> {
        let text = text.into();
        if text.len() > MAX {
            return Err(BoundExceeded {
                len: text.len(),
                max: MAX,
            });
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for BoundedText<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedText<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // postcard checks the claimed length against the input it holds
        // before handing out the string, so this allocates at most the input.
        let text = String::deserialize(deserializer)?;
        Self::new(text).map_err(|e| de::Error::invalid_length(e.len, &"a shorter string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_over_bound_is_refused_on_construction() {
        assert!(BoundedVec::<u8, 2>::new(vec![1, 2]).is_ok());
        assert_eq!(
            BoundedVec::<u8, 2>::new(vec![1, 2, 3]),
            Err(BoundExceeded { len: 3, max: 2 })
        );
    }

    #[test]
    fn vec_claiming_more_than_bound_is_refused_before_reading() {
        // A claimed count of 2^32 with no elements behind it.
        let mut hostile = Vec::new();
        hostile.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x10]);
        let got = postcard::from_bytes::<BoundedVec<u64, 16>>(&hostile);
        assert!(got.is_err());
        // The same claim of 3 within a bound of 2, with the elements present.
        let encoded = postcard::to_stdvec(&vec![1u8, 2, 3]).expect("encode");
        assert!(postcard::from_bytes::<BoundedVec<u8, 2>>(&encoded).is_err());
        assert_eq!(
            postcard::from_bytes::<BoundedVec<u8, 3>>(&encoded)
                .expect("within bound")
                .as_slice(),
            &[1, 2, 3]
        );
    }

    #[test]
    fn bytes_over_bound_are_refused() {
        let encoded = postcard::to_stdvec(&BoundedBytes::<8>::new(vec![7; 8]).expect("fits"))
            .expect("encode");
        assert!(postcard::from_bytes::<BoundedBytes<7>>(&encoded).is_err());
        assert_eq!(
            postcard::from_bytes::<BoundedBytes<8>>(&encoded)
                .expect("fits")
                .as_bytes(),
            &[7; 8]
        );
        assert!(BoundedBytes::<2>::new(vec![0; 3]).is_err());
    }
}
