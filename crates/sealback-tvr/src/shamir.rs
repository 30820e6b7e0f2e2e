//! Shamir secret sharing over the ristretto255 scalar field, and Lagrange coefficients at zero.
//!
//! The client deals: `f(x) = k + c_1·x + … + c_{t-1}·x^{t-1}`, share `i` (1-based) is `f(i)`.
//! Any `t` shares give back `k = Σ λ_i·f(i)` with `λ_i = Π_{j≠i} j / (j − i)`; fewer say
//! nothing about `k`. Realms never combine shares: the client combines *evaluations*
//! `k_i·B` with the same coefficients (linear in the key), so `k` itself is never rebuilt
//! outside tests. The property tests check reconstruction, and check our Lagrange
//! coefficients against shares dealt by `frost-ristretto255` (RFC 9591's `split`, the same
//! `curve25519-dalek`), a dev-dependency used as an oracle.

use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroizing;

/// The largest number of shares (realms) a slot may name.
pub const MAX_SHARES: usize = 16;

/// Why shares could not be dealt or combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    /// `t` must satisfy `1 ≤ t ≤ n ≤ MAX_SHARES`.
    #[error("a threshold of {threshold} of {shares} is not allowed")]
    BadThreshold {
        /// t
        threshold: usize,
        /// n
        shares: usize,
    },
    /// An index was 0, above `MAX_SHARES`, or repeated.
    #[error("share indices must be distinct and between 1 and 16")]
    BadIndex,
}

/// Splits `secret` into `n` shares, any `t` of which recover it; `coefficients` are the
/// `t − 1` random higher coefficients (taken explicitly so that vectors can fix them).
/// Share `i` (index `i + 1`) is `out[i]`.
pub fn split(
    secret: &Scalar,
    coefficients: &[Scalar],
    n: usize,
) -> Result<Vec<Zeroizing<Scalar>>, ShamirError> {
    let t = coefficients.len() + 1;
    if n == 0 || t > n || n > MAX_SHARES {
        return Err(ShamirError::BadThreshold {
            threshold: t,
            shares: n,
        });
    }
    Ok((1..=n as u64)
        .map(|i| {
            // Horner: ((c_{t-1}·x + c_{t-2})·x + …)·x + k
            let x = Scalar::from(i);
            let mut acc = Zeroizing::new(Scalar::ZERO);
            for c in coefficients.iter().rev() {
                *acc = *acc * x + c;
            }
            *acc = *acc * x + secret;
            acc
        })
        .collect())
}

/// The Lagrange coefficients at zero for the 1-based `indices`: `λ_i = Π_{j≠i} j / (j − i)`.
pub fn lagrange_at_zero(indices: &[u8]) -> Result<Vec<Scalar>, ShamirError> {
    for (n, &i) in indices.iter().enumerate() {
        if i == 0 || usize::from(i) > MAX_SHARES || indices[..n].contains(&i) {
            return Err(ShamirError::BadIndex);
        }
    }
    Ok(indices
        .iter()
        .map(|&i| {
            let xi = Scalar::from(u64::from(i));
            let (num, den) = indices.iter().filter(|&&j| j != i).fold(
                (Scalar::ONE, Scalar::ONE),
                |(num, den), &j| {
                    let xj = Scalar::from(u64::from(j));
                    (num * xj, den * (xj - xi))
                },
            );
            // den ≠ 0: the indices are distinct and below the group order.
            num * den.invert()
        })
        .collect())
}

/// Rebuilds the secret from `(index, share)` pairs (tests and vectors only: the protocol
/// combines evaluations, never shares).
pub fn reconstruct(shares: &[(u8, Scalar)]) -> Result<Scalar, ShamirError> {
    let indices: Vec<u8> = shares.iter().map(|(i, _)| *i).collect();
    let lambdas = lagrange_at_zero(&indices)?;
    Ok(shares.iter().zip(lambdas).map(|((_, s), l)| s * l).sum())
}
