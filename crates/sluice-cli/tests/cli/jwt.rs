//! End-to-end tests of JWT bearer tokens: a JWKS served by the test on
//! 127.0.0.1 with keys made here (Ed25519, P-256, RSA), tokens signed here.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::harness::*;
use crate::util::*;

const ISS: &str = "https://issuer.test";
const AUD: &str = "sluice";

/// A JWKS endpoint: serves whatever `keys` holds, counts fetches.
struct Jwks {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

fn serve_jwks() -> Jwks {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(Vec::new()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (k, f) = (Arc::clone(&keys), Arc::clone(&fetches));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            f.fetch_add(1, Ordering::SeqCst);
            let body = json!({ "keys": *k.lock().unwrap() }).to_string();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Jwks { url, keys, fetches }
}

/// A signing key and its public JWK.
struct Signer {
    alg: Algorithm,
    kid: String,
    key: EncodingKey,
    jwk: Value,
}

fn ed25519(kid: &str) -> Signer {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let x = B64.encode(pair.public_key().as_ref());
    Signer {
        alg: Algorithm::EdDSA,
        kid: kid.into(),
        key: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
    }
}

fn p256(kid: &str) -> Signer {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref(); // 0x04 || x || y
    Signer {
        alg: Algorithm::ES256,
        kid: kid.into(),
        key: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]), "kid": kid}),
    }
}

/// The contents of a DER element starting at `at`: (contents, next offset).
fn der(buf: &[u8], at: usize) -> (&[u8], usize) {
    let mut i = at + 1;
    let first = buf[i] as usize;
    i += 1;
    let len = if first < 0x80 {
        first
    } else {
        let n = first & 0x7f;
        let len = buf[i..i + n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        i += n;
        len
    };
    (&buf[i..i + len], i + len)
}

fn rsa(kid: &str) -> Signer {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().unwrap();
    // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING (RSAPrivateKey) }
    let (info, _) = der(pkcs8.as_ref(), 0);
    let (_, after_version) = der(info, 0);
    let (_, after_alg) = der(info, after_version);
    let (pkcs1, _) = der(info, after_alg);
    let public = pair.public_key();
    let n = public.modulus();
    let e = public.exponent();
    Signer {
        alg: Algorithm::RS256,
        kid: kid.into(),
        key: EncodingKey::from_rsa_der(pkcs1),
        jwk: json!({"kty": "RSA", "n": B64.encode(n.big_endian_without_leading_zero()), "e": B64.encode(e.big_endian_without_leading_zero()), "kid": kid, "alg": "RS256"}),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(scope: &str) -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "ci-bot", "tenant": "acme", "scope": scope,
           "exp": now() + 300, "nbf": now() - 5, "iat": now()})
}

impl Signer {
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// `alg: none`, no signature.
fn unsigned(kid: &str, claims: &Value) -> String {
    let head = B64.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    format!("{head}.{}.", B64.encode(claims.to_string()))
}

#[test]
fn jwts_from_the_configured_issuer_work_and_every_bad_one_is_refused() {
    let env = Env::new();
    let api = tenant(&env, "acme", "read");
    let jwks = serve_jwks();
    let (ed, ec, rs) = (ed25519("ed1"), p256("ec1"), rsa("rs1"));
    *jwks.keys.lock().unwrap() = vec![ed.jwk.clone(), ec.jwk.clone(), rs.jwk.clone()];
    let s = Server::start(
        &env,
        &[
            "--jwt-jwks-url",
            &jwks.url,
            "--jwt-issuer",
            ISS,
            "--jwt-audience",
            AUD,
            "--jwks-refresh-secs",
            "1",
        ],
    );
    let mut used = vec![api.clone()];

    // Each algorithm; the scope claim decides what the token may do.
    for signer in [&ed, &ec, &rs] {
        let w = signer.sign(&claims("openid sluice:write"));
        used.push(w.clone());
        assert_eq!(get(&s, &w, "/v1/objects").status, 200, "{:?}", signer.alg);
        let key = format!("/v1/objects/{:?}?wait=true", signer.alg);
        assert_eq!(put(&s, &w, &key, b"via jwt").status, 201, "{:?}", signer.alg);
    }
    let read_only = ed.sign(&claims("sluice:read"));
    assert_problem(&put(&s, &read_only, "/v1/objects/x", b"no"), 403, "forbidden");
    assert_eq!(
        get(&s, &api, "/v1/objects").json()["objects"].as_array().unwrap().len(),
        3
    );

    // Refused, each with 401.
    let mut expired = claims("write");
    expired["exp"] = json!(now() - 120);
    let mut wrong_aud = claims("write");
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims("write");
    wrong_iss["iss"] = json!("https://evil.test");
    let mut early = claims("write");
    early["nbf"] = json!(now() + 600);
    let mut no_exp = claims("write");
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut stranger = claims("write");
    stranger["tenant"] = json!("nobody");
    let mut impostor = ed25519("ed1"); // same kid, another key
    impostor.jwk = Value::Null;
    let hs = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("ed1".into());
        jsonwebtoken::encode(&h, &claims("write"), &EncodingKey::from_secret(b"guess")).unwrap()
    };
    let bad = [
        ("expired", ed.sign(&expired)),
        ("wrong audience", ec.sign(&wrong_aud)),
        ("wrong issuer", rs.sign(&wrong_iss)),
        ("not yet valid", ed.sign(&early)),
        ("no exp", ed.sign(&no_exp)),
        ("unknown tenant", ed.sign(&stranger)),
        ("wrong key", impostor.sign(&claims("write"))),
        ("alg none", unsigned("ed1", &claims("write"))),
        ("hmac", hs),
        ("garbage", "aaa.bbb.ccc".to_string()),
    ];
    for (what, token) in &bad {
        used.push(token.clone());
        let r = get(&s, token, "/v1/objects");
        assert_eq!(r.status, 401, "{what}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["code"], "unauthorized", "{what}");
    }

    // Unknown kids refetch the JWKS at most once per refresh interval.
    let before = jwks.fetches.load(Ordering::SeqCst);
    let ghost = ed25519("ghost");
    let started = Instant::now();
    for _ in 0..30 {
        assert_eq!(get(&s, &ghost.sign(&claims("write")), "/v1/objects").status, 401);
    }
    let fetched = jwks.fetches.load(Ordering::SeqCst) - before;
    let allowed = started.elapsed().as_secs() as usize + 2;
    assert!(fetched <= allowed, "{fetched} fetches for 30 unknown-kid requests");

    // A rotated-in key is picked up on its first use after the interval.
    let next = p256("ec2");
    jwks.keys.lock().unwrap().push(next.jwk.clone());
    std::thread::sleep(Duration::from_millis(1100));
    let t = next.sign(&claims("read"));
    used.push(t.clone());
    assert_eq!(get(&s, &t, "/v1/objects").status, 200);

    let log = s.log();
    for token in &used {
        assert!(!log.contains(token.as_str()), "a token was logged");
    }
    assert!(!log.contains("panicked"), "{log}");
}
