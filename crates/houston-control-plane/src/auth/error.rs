//! Rejections of bearer tokens. Each variant names the check that failed, never the key
//! material or the expected values.

/// A failed token check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("missing bearer token: send Authorization: Bearer <access token>")]
    Missing,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted for its issuer")]
    AlgorithmRejected,
    #[error("the token's issuer is not accepted")]
    IssuerInvalid,
    #[error("the token has no {0} claim")]
    ClaimMissing(String),
    #[error("the token's audience is not accepted")]
    AudienceInvalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token's signing key is unknown")]
    KeyUnknown,
    #[error("the token's signature is invalid")]
    SignatureInvalid,
    #[error("the token's subject is not a known user")]
    SubjectInvalid,
    #[error("the issuer's keys could not be fetched; try again shortly")]
    KeysUnavailable,
}

impl TokenError {
    /// Returns the stable error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::Malformed => "token_malformed",
            Self::AlgorithmRejected => "token_algorithm_rejected",
            Self::IssuerInvalid => "token_issuer_invalid",
            Self::ClaimMissing(_) => "token_claim_missing",
            Self::AudienceInvalid => "token_audience_invalid",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::IssuedInFuture => "token_issued_in_future",
            Self::KeyUnknown => "token_key_unknown",
            Self::SignatureInvalid => "token_signature_invalid",
            Self::SubjectInvalid => "token_subject_invalid",
            Self::KeysUnavailable => "token_keys_unavailable",
        }
    }

    /// Returns the name of the failed check, sent as `details.check`.
    #[must_use]
    pub fn check(&self) -> String {
        match self {
            Self::Missing => "authorization".to_owned(),
            Self::Malformed => "format".to_owned(),
            Self::AlgorithmRejected => "alg".to_owned(),
            Self::IssuerInvalid => "iss".to_owned(),
            Self::ClaimMissing(claim) => claim.clone(),
            Self::AudienceInvalid => "aud".to_owned(),
            Self::Expired => "exp".to_owned(),
            Self::NotYetValid => "nbf".to_owned(),
            Self::IssuedInFuture => "iat".to_owned(),
            Self::KeyUnknown | Self::KeysUnavailable => "kid".to_owned(),
            Self::SignatureInvalid => "signature".to_owned(),
            Self::SubjectInvalid => "sub".to_owned(),
        }
    }

    /// Maps a verification error of the JWT library onto the failed check.
    pub(crate) fn from_jwt(error: &jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match error.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidAudience => Self::AudienceInvalid,
            ErrorKind::InvalidIssuer => Self::IssuerInvalid,
            ErrorKind::MissingRequiredClaim(claim) => Self::ClaimMissing(claim.clone()),
            ErrorKind::InvalidSignature => Self::SignatureInvalid,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::InvalidAlgorithmName => Self::AlgorithmRejected,
            ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidEddsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
                Self::KeyUnknown
            }
            _ => Self::Malformed,
        }
    }
}
