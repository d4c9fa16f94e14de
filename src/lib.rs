//! speck builds the smallest possible container images from scratch, without a daemon.
//!
//! The modules follow the flow of an image:
//!
//! 1. [`forge`] generates tiny static programs; [`collect`] gathers a user's files from the host.
//!    Both produce [`layer::Entry`] values.
//! 2. [`layer`] turns entries into byte-exact, reproducible tar layers.
//! 3. [`image`] holds the one image model: platform, config and layers, immutable once built.
//! 4. [`write`] publishes an image: docker-archive, OCI layout, OCI archive, or a local engine.
//!
//! Building never publishes and publishing never builds: sources meet sinks only at
//! [`image::Image`].

pub mod collect;
pub mod digest;
pub mod forge;
pub mod image;
pub mod layer;
pub mod write;
