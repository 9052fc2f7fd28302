//! The test vectors published in `docs/FORMAT.md` decode to their documented
//! plaintext, through every read path (streaming with 1 and N threads, and
//! random access); vectors with an `expect:` line other than `ok` must be
//! refused with that error on every path, writing nothing.
//! `cargo test -p sluice-engine --test vectors -- --ignored --nocapture`
//! prints a fresh set (new random keys) for the document; the
//! `crafted-passphrase-slot` vector comes from the format crate
//! (`print_crafted_passphrase_slot_vector`).

use sluice_engine::format::{
    ChunkSize, Compression, Error as F, FileParams, Identity, KdfParams, KeyRing, Passphrase, RawKey, SlotSpec, Suite,
};
use sluice_engine::{Archive, Control, EncodeOptions, Engine, EngineConfig, Error};

struct Vector {
    name: String,
    keys: KeyRing,
    expect: String,
    plaintext: Vec<u8>,
    blake3: String,
    container: Vec<u8>,
}

/// Whether `err` is the error an `expect:` line names.
fn is_expected(expect: &str, err: &Error) -> bool {
    match expect {
        "not-encrypted" => matches!(err, Error::Format(F::NotEncrypted)),
        "wrong-key" => matches!(err, Error::Format(F::NoMatchingKey { .. })),
        other => panic!("unknown expect: {other}"),
    }
}

fn plaintext(spec: &str) -> Vec<u8> {
    // "repeat <text> <len>" or "text <text>", with \n escapes.
    let (kind, rest) = spec.split_once(' ').unwrap();
    match kind {
        "text" => rest.replace("\\n", "\n").into_bytes(),
        "repeat" => {
            let (text, len) = rest.rsplit_once(' ').unwrap();
            let len: usize = len.parse().unwrap();
            text.bytes().cycle().take(len).collect()
        }
        other => panic!("unknown plaintext kind {other}"),
    }
}

fn parse_vectors(doc: &str) -> Vec<Vector> {
    let mut out = Vec::new();
    let mut blocks = doc.split("```vector\n").skip(1);
    for block in blocks.by_ref() {
        let body = block.split("```").next().unwrap();
        let (mut name, mut keys, mut plain, mut b3, mut hexdata) =
            (String::new(), KeyRing::new(), Vec::new(), String::new(), String::new());
        let mut expect = "ok".to_string();
        let mut in_hex = false;
        for line in body.lines() {
            if in_hex {
                hexdata.push_str(line.trim());
                continue;
            }
            let (k, v) = line.split_once(':').unwrap();
            let v = v.trim();
            match k {
                "name" => name = v.to_string(),
                "key-file" => keys = keys.with_raw_key(RawKey::from_bytes(&hex::decode(v).unwrap()).unwrap()),
                "identity" => keys = keys.with_identity(Identity::parse(v).unwrap()),
                "passphrase" => keys = keys.with_passphrase(Passphrase::new(v)),
                "allow-unencrypted" => keys.allow_unencrypted = v == "yes",
                "expect" => expect = v.to_string(),
                "plaintext" => plain = plaintext(v),
                "blake3" => b3 = v.to_string(),
                "container" => in_hex = true,
                _ => {}
            }
        }
        out.push(Vector {
            name,
            keys,
            expect,
            plaintext: plain,
            blake3: b3,
            container: hex::decode(hexdata).unwrap(),
        });
    }
    out
}

#[test]
fn documented_vectors_decode() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/FORMAT.md")).unwrap();
    let vectors = parse_vectors(&doc);
    assert!(vectors.len() >= 6, "FORMAT.md lists {} vectors", vectors.len());
    for v in vectors.iter().filter(|v| v.expect != "ok") {
        for threads in [1, 3] {
            let e = Engine::new(EngineConfig {
                threads: Some(threads),
                ..Default::default()
            })
            .unwrap();
            let mut out = Vec::new();
            let err = e
                .decode(&v.container[..], &mut out, &v.keys, &Control::new())
                .expect_err(&v.name);
            assert!(is_expected(&v.expect, &err), "{}: {err}", v.name);
            assert!(out.is_empty(), "{}: wrote plaintext", v.name);
        }
        let err = Archive::open(&v.container, &v.keys)
            .err()
            .unwrap_or_else(|| panic!("{}: opened", v.name));
        assert!(is_expected(&v.expect, &err), "{}: {err}", v.name);
    }
    assert!(
        vectors.iter().any(|v| v.expect == "not-encrypted") && vectors.iter().any(|v| v.expect == "wrong-key"),
        "FORMAT.md must keep its refusal vectors"
    );
    for v in vectors.iter().filter(|v| v.expect == "ok") {
        assert_eq!(
            blake3::hash(&v.plaintext).to_hex().as_str(),
            v.blake3,
            "{}: documented digest",
            v.name
        );
        for threads in [1, 3] {
            let e = Engine::new(EngineConfig {
                threads: Some(threads),
                in_flight: None,
                ..Default::default()
            })
            .unwrap();
            let mut out = Vec::new();
            let s = e
                .decode(&v.container[..], &mut out, &v.keys, &Control::new())
                .unwrap_or_else(|err| panic!("{}: {err}", v.name));
            assert!(out == v.plaintext, "{}: plaintext", v.name);
            assert_eq!(hex::encode(s.digest), v.blake3, "{}: digest", v.name);
            let a = Archive::open(&v.container, &v.keys).unwrap();
            let mut part = Vec::new();
            let len = v.plaintext.len() as u64;
            a.read_range(&e, len / 3..len, &mut part, &Control::new()).unwrap();
            assert!(part == v.plaintext[(len / 3) as usize..], "{}: range", v.name);
        }
        // A one-bit change anywhere in the container is rejected.
        let mut bad = v.container.clone();
        let at = bad.len() / 2;
        bad[at] ^= 1;
        assert!(Engine::new(EngineConfig::default())
            .unwrap()
            .verify(&bad[..], &v.keys, &Control::new())
            .is_err());
    }
}

/// Name, key line, plaintext spec, suite, compression, slots.
type Case = (&'static str, String, &'static str, Suite, &'static str, Vec<SlotSpec>);

#[test]
#[ignore = "prints fresh vectors for docs/FORMAT.md"]
fn generate_vectors() {
    let e = Engine::new(EngineConfig {
        threads: Some(1),
        in_flight: None,
        ..Default::default()
    })
    .unwrap();
    let chunk = ChunkSize::parse("4KiB").unwrap();
    let key = RawKey::generate().unwrap();
    let id = Identity::generate().unwrap();
    let pass = Passphrase::new("sluice test vector");
    let mut cases: Vec<Case> = vec![
        (
            "unencrypted-none",
            "allow-unencrypted: yes".to_string(),
            "text hello, sluice\\n",
            Suite::None,
            "none",
            vec![],
        ),
        (
            "keyfile-aes256gcm-zstd",
            format!("key-file: {}", hex::encode(key.expose())),
            "repeat 0123456789 5000",
            Suite::Aes256Gcm,
            "zstd:3",
            vec![SlotSpec::RawKey(key.clone())],
        ),
        (
            "x25519-chacha20poly1305-lz4",
            format!("identity: {}", &*id.to_secret_string()),
            "repeat sluice! 9000",
            Suite::ChaCha20Poly1305,
            "lz4",
            vec![SlotSpec::Recipient(id.recipient())],
        ),
        (
            "passphrase-aes256gcm-none",
            "passphrase: sluice test vector".to_string(),
            "text hello, sluice\\n",
            Suite::Aes256Gcm,
            "none",
            vec![SlotSpec::Passphrase(
                pass,
                KdfParams {
                    memory_kib: 256,
                    passes: 1,
                    lanes: 1,
                },
            )],
        ),
    ];
    cases.push((
        "downgrade-refused",
        format!("key-file: {}\nexpect: not-encrypted", hex::encode(key.expose())),
        "text a file anyone could have made\\n",
        Suite::None,
        "zstd:3",
        vec![],
    ));
    for (name, keyline, plain, suite, comp, slots) in cases {
        let data = plaintext(plain);
        let opts = EncodeOptions {
            params: FileParams {
                suite,
                compression: Compression::parse(comp).unwrap(),
                chunk_size: chunk,
            },
            slots,
            adaptive: true,
        };
        let mut file = Vec::new();
        e.encode(&data[..], &mut file, &opts, &Control::new()).unwrap();
        println!("```vector\nname: {name}");
        if !keyline.is_empty() {
            println!("{keyline}");
        }
        println!(
            "plaintext: {plain}\nblake3: {}\ncontainer:",
            blake3::hash(&data).to_hex()
        );
        for line in hex::encode(&file).as_bytes().chunks(64) {
            println!("{}", std::str::from_utf8(line).unwrap());
        }
        println!("```\n");
    }
}
