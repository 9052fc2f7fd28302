#![allow(missing_docs)]
//! Micro-benchmarks of the stages and of whole in-memory encode/decode, so
//! regressions show up: `cargo bench -p sluice-engine`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_engine::format::{
    hash_chunk, ChunkSize, Compression, Compressor, Decompressor, FileParams, Header, KeyRing, RawKey, SlotSpec,
    StreamContext, Suite,
};
use sluice_engine::{Control, EncodeOptions, Engine, EngineConfig};

const CHUNK: usize = 4 << 20;

/// Log-like text: compressible the way real logs are.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 200);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut n = 0u64;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        n += 1;
        let line = format!(
            "{{\"ts\":{},\"level\":\"INFO\",\"svc\":\"api-{}\",\"path\":\"/v1/orders/{}\",\"status\":{},\"ms\":{}}}\n",
            1_700_000_000 + n,
            x % 12,
            x % 100_000,
            [200, 200, 200, 404, 500][(x % 5) as usize],
            x % 997
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
    out
}

fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    sluice_engine::format::kdf::random_bytes(&mut v).unwrap_or_default();
    v
}

fn context(suite: Suite, compression: Compression) -> (StreamContext, KeyRing) {
    let key = RawKey::from_bytes(&[7; 32]).unwrap();
    let slots = if suite.is_encrypted() {
        vec![SlotSpec::RawKey(key.clone())]
    } else {
        vec![]
    };
    let params = FileParams {
        suite,
        compression,
        chunk_size: ChunkSize::from_bytes(CHUNK as u64).unwrap(),
    };
    let (h, c) = Header::create(&params, &slots).unwrap();
    (StreamContext::new(h, c), KeyRing::new().with_raw_key(key))
}

fn stages(c: &mut Criterion) {
    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    g.sample_size(20);
    let data = text(CHUNK);
    let noise = random(CHUNK);
    g.bench_function("blake3_chunk", |b| b.iter(|| hash_chunk(3, CHUNK, &data)));
    for (name, suite) in [
        ("aes256gcm", Suite::Aes256Gcm),
        ("chacha20poly1305", Suite::ChaCha20Poly1305),
        ("checksum", Suite::None),
    ] {
        let (ctx, _) = context(suite, Compression::default());
        let mut none = Compressor::new(Compression::NONE, ChunkSize::default(), false).unwrap();
        let mut out = Vec::new();
        g.bench_function(BenchmarkId::new("seal_raw", name), |b| {
            b.iter(|| ctx.seal_chunk(1, &noise, &mut none, &mut out).unwrap())
        });
    }
    for (name, comp, input, probe) in [
        ("zstd3_text", Compression::default(), &data, true),
        ("lz4_text", Compression::parse("lz4").unwrap(), &data, true),
        ("zstd3_random_probe", Compression::default(), &noise, true),
        ("zstd3_random_noprobe", Compression::default(), &noise, false),
    ] {
        let (ctx, _) = context(Suite::Aes256Gcm, comp);
        let mut cmp = Compressor::new(comp, ChunkSize::default(), probe).unwrap();
        let mut out = Vec::new();
        g.bench_function(BenchmarkId::new("compress_seal", name), |b| {
            b.iter(|| ctx.seal_chunk(1, input, &mut cmp, &mut out).unwrap())
        });
        let rh = ctx.seal_chunk(1, input, &mut cmp, &mut out).unwrap();
        let mut dec = Decompressor::new();
        let mut plain = Vec::new();
        let mut body = Vec::new();
        g.bench_function(BenchmarkId::new("open_decompress", name), |b| {
            b.iter(|| {
                body.clear();
                body.extend_from_slice(&out);
                ctx.open_chunk(1, &rh, &mut body, &mut dec, &mut plain).unwrap()
            })
        });
    }
    g.finish();
}

fn whole(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    let len = 64 << 20;
    g.throughput(Throughput::Bytes(len as u64));
    g.sample_size(10);
    let data = text(len);
    let key = RawKey::from_bytes(&[9; 32]).unwrap();
    let keys = KeyRing::new().with_raw_key(key.clone());
    let opts = EncodeOptions {
        slots: vec![SlotSpec::RawKey(key)],
        ..EncodeOptions::default()
    };
    for threads in [1, 2] {
        let e = Engine::new(EngineConfig {
            threads: Some(threads),
            in_flight: None,
            ..Default::default()
        })
        .unwrap();
        let mut file = Vec::with_capacity(len);
        g.bench_function(BenchmarkId::new("encode_zstd3_aes", threads), |b| {
            b.iter(|| {
                file.clear();
                e.encode(&data[..], &mut file, &opts, &Control::new()).unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("decode_zstd3_aes", threads), |b| {
            b.iter(|| e.decode(&file[..], std::io::sink(), &keys, &Control::new()).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, stages, whole);
criterion_main!(benches);
