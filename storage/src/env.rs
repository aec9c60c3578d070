//! Credentials and defaults from the usual environment variables. Values
//! read here never appear in an error or a log line.

#[cfg(feature = "remote")]
use crate::error::OpenError;

/// The S3 configuration of `s3://bucket/prefix`: credentials from
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (optional)
/// `AWS_SESSION_TOKEN`; the endpoint from the URL's `endpoint` option,
/// else `AWS_ENDPOINT_URL` (else AWS itself); the region from the URL's
/// `region` option, else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else
/// `us-east-1`. Plain HTTP is allowed only for an `http://` endpoint.
///
/// # Errors
///
/// [`OpenError::Environment`] naming the missing variable (never a value).
#[cfg(feature = "remote")]
pub fn s3_config(
    bucket: &str,
    prefix: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
) -> Result<storage_remote::S3Config, OpenError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let need = |name: &'static str| {
        var(name).ok_or_else(|| {
            OpenError::Environment(format!(
                "s3://{bucket}: set {name} (S3 credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally AWS_SESSION_TOKEN)"
            ))
        })
    };
    let endpoint = endpoint
        .map(str::to_owned)
        .or_else(|| var("AWS_ENDPOINT_URL"));
    Ok(storage_remote::S3Config {
        allow_http: endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://")),
        endpoint,
        bucket: bucket.to_owned(),
        region: region
            .map(str::to_owned)
            .or_else(|| var("AWS_REGION"))
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned()),
        access_key_id: need("AWS_ACCESS_KEY_ID")?,
        secret_access_key: need("AWS_SECRET_ACCESS_KEY")?,
        session_token: var("AWS_SESSION_TOKEN"),
        prefix: prefix.to_owned(),
    })
}
