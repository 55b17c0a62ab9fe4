//! Password hashes in RabbitMQ's format, so users move between RabbitMQ and Warren with their
//! passwords: `base64(salt ‖ H(salt ‖ password))` with a 4-byte salt, H being SHA-256 (the
//! default), SHA-512 or MD5 (rabbit_password, rabbit_password_hashing_*).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use md5::Md5;
use sha2::{Digest, Sha256, Sha512};

/// Salt length RabbitMQ uses.
const SALT_LEN: usize = 4;

/// The hash functions RabbitMQ's definitions name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
    Md5,
}

impl Algorithm {
    /// From `hashing_algorithm` in a definitions file.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "rabbit_password_hashing_sha256" => Some(Algorithm::Sha256),
            "rabbit_password_hashing_sha512" => Some(Algorithm::Sha512),
            "rabbit_password_hashing_md5" => Some(Algorithm::Md5),
            _ => None,
        }
    }

    /// The name a definitions file gives it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "rabbit_password_hashing_sha256",
            Algorithm::Sha512 => "rabbit_password_hashing_sha512",
            Algorithm::Md5 => "rabbit_password_hashing_md5",
        }
    }

    fn digest(self, salt: &[u8], password: &[u8]) -> Vec<u8> {
        fn run<D: Digest>(salt: &[u8], password: &[u8]) -> Vec<u8> {
            let mut d = D::new();
            d.update(salt);
            d.update(password);
            d.finalize().to_vec()
        }
        match self {
            Algorithm::Sha256 => run::<Sha256>(salt, password),
            Algorithm::Sha512 => run::<Sha512>(salt, password),
            Algorithm::Md5 => run::<Md5>(salt, password),
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
            Algorithm::Md5 => 16,
        }
    }
}

/// A stored password: salt and digest. An empty one never matches (a user that cannot log in
/// with a password, as in RabbitMQ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash {
    algorithm: Algorithm,
    salted: Vec<u8>,
}

impl PasswordHash {
    /// Hashes a new password with SHA-256 and a random salt.
    pub fn new(password: &str) -> PasswordHash {
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt);
        Self::with_salt(Algorithm::Sha256, salt, password)
    }

    fn with_salt(algorithm: Algorithm, salt: [u8; SALT_LEN], password: &str) -> PasswordHash {
        let mut salted = salt.to_vec();
        salted.extend(algorithm.digest(&salt, password.as_bytes()));
        PasswordHash { algorithm, salted }
    }

    /// No password: logins with a password fail.
    pub fn none() -> PasswordHash {
        PasswordHash {
            algorithm: Algorithm::Sha256,
            salted: Vec::new(),
        }
    }

    /// From a definitions file's `password_hash` (base64); None when it is not base64 or too
    /// short for the algorithm. The empty string is `none()`.
    pub fn from_base64(text: &str, algorithm: Algorithm) -> Option<PasswordHash> {
        if text.is_empty() {
            return Some(PasswordHash {
                algorithm,
                salted: Vec::new(),
            });
        }
        let salted = BASE64.decode(text).ok()?;
        (salted.len() == SALT_LEN + algorithm.digest_len())
            .then_some(PasswordHash { algorithm, salted })
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.salted)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether `password` is this one, comparing in constant time. Empty passwords never
    /// match (RabbitMQ refuses them).
    pub fn matches(&self, password: &[u8]) -> bool {
        if self.salted.len() < SALT_LEN || password.is_empty() {
            return false;
        }
        let (salt, want) = self.salted.split_at(SALT_LEN);
        constant_time_eq(&self.algorithm.digest(salt, password), want)
    }
}

/// Compares without stopping at the first difference (the time does not tell how much of a
/// guess was right).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Random bytes from the operating system; should it fail, a hash of the time and a
/// process-wide counter (a salt only has to differ between users, not be secret).
fn fill_random(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    for (b, x) in buf.iter_mut().zip(h.finish().to_le_bytes()) {
        *b = x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rabbitmqs_own_test_vector_for_guest() {
        let h = PasswordHash::from_base64(
            "A0EX/2hiwrIDKFS+nEqwbCGcVxwEkDBFF3mBfkNW53KFFk64",
            Algorithm::Sha256,
        )
        .expect("valid hash");
        assert!(h.matches(b"guest"));
        assert!(!h.matches(b"guest2"));
        assert!(!h.matches(b""));
    }

    #[test]
    fn every_algorithm_round_trips_through_base64() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512, Algorithm::Md5] {
            let h = PasswordHash::with_salt(algorithm, [1, 2, 3, 4], "s3cret");
            let back = PasswordHash::from_base64(&h.to_base64(), algorithm).expect("decodes");
            assert!(back.matches(b"s3cret"), "{algorithm:?}");
            assert!(!back.matches(b"s3cret "), "{algorithm:?}");
            assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
        }
    }

    #[test]
    fn new_hashes_are_salted_differently_and_empty_ones_never_match() {
        let (a, b) = (PasswordHash::new("pw"), PasswordHash::new("pw"));
        assert_ne!(a.to_base64(), b.to_base64());
        assert!(a.matches(b"pw") && b.matches(b"pw"));
        assert!(!PasswordHash::none().matches(b"pw"));
        assert!(PasswordHash::from_base64("not base64!", Algorithm::Sha256).is_none());
    }
}
