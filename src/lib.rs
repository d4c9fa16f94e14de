//! speck builds the smallest possible container images from scratch, without a daemon.
//!
//! The modules follow the flow of an image:
//!
//! 1. [`forge`] generates tiny static programs; [`collect`] gathers a user's files from the host.
//!    Both produce [`layer::Entry`] values.
//! 2. [`layer`] turns entries into byte-exact, reproducible tar layers.
//! 3. [`image`] holds the one image model: platform, config and layers, immutable once built.
//! 4. [`write`](mod@write) publishes an image: docker-archive, OCI layout, OCI archive (golfed and
//!    compressed as asked), or a local engine ([`engine`]).
//!    [`registry`] pushes images to (and pulls them from) any OCI registry.
//! 5. [`read`] brings images back from archives, layouts and engines; [`measure`] sizes
//!    them as every tool counts and says what is inside; [`run`] unpacks and runs them
//!    here in namespaces, and checks that they will run.
//!
//! Building never publishes and publishing never builds: sources meet sinks only at
//! [`image::Image`].
//!
//! ```
//! use speck::image::{Config, ImageSpec, Platform};
//! use speck::layer::{Compression, Entry, Layer, LayerOptions, TarForm};
//! use speck::write::{self, Format};
//!
//! // Generate a program, put it in a layer, freeze an image, write a docker-archive.
//! let program = speck::forge::hello::program(speck::forge::Arch::Amd64, b"hi\n", 0);
//! let options = LayerOptions { form: TarForm::Minimal, mtime: 0, compression: Compression::None };
//! let layer = Layer::build(&[Entry::file("hello", 0o755, program)?], &options)?;
//! let image = ImageSpec {
//!     platform: Platform::linux("amd64"),
//!     config: Config { entrypoint: Some(vec!["/hello".into()]), ..Config::default() },
//!     layers: vec![layer],
//!     created: 0,
//!     created_by: "example".into(),
//!     annotations: Default::default(),
//! }
//! .build();
//! let options = write::WriteOptions { tags: vec!["hello:latest".parse()?], ..Default::default() };
//! let archive = write::archive(&image.into(), &options).bytes;
//! // Three members (config, layer, manifest.json), each a 512-byte header and contents
//! // padded to 512 bytes, except the last, which ends the archive unpadded.
//! assert!(archive.len() < 4096, "{}", archive.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
// The docs link private items on purpose: they are read with --document-private-items,
// where a module's own helpers are what explains it.
#![allow(rustdoc::private_intra_doc_links)]

pub mod collect;
pub mod compress;
pub mod digest;
pub mod engine;
pub mod forge;
pub mod image;
pub mod layer;
pub mod measure;
pub mod read;
pub mod registry;
pub mod run;
pub mod write;
