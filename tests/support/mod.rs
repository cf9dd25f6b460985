//! Shared test fixtures, one module per kind of real part.

pub mod corpus;
pub mod engines;
pub mod registry;
