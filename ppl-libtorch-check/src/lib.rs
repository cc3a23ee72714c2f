//! Nothing at run time: this crate's build script (`build.rs`) stops a build that cannot find
//! libtorch, naming ppl's setup command, before tch's `torch-sys` fails with a message that does
//! not mention it. `ppl-runtime` depends on it.
