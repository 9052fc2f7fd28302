//! Tenants: their limits ([`limits`], refusing with a [`limits::Refusal`])
//! and what administrators do with them ([`admin`]: tenants, limits,
//! tokens), for `sluice admin` and the admin API alike.

pub mod admin;
pub mod limits;
