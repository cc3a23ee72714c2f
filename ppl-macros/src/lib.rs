//! The procedural macros of ppl. Use them through `ppl` (`use ppl::prelude::*`), not directly.
//!
//! Pipeline, one stage per file: [`args`] parses macro arguments, [`rewrite`] walks a
//! `#[model]`/`#[guide]` body to name sites after their `let` bindings and to catch misuse, and
//! [`expand`] turns each `sample!`/`param!`/`plate!` into calls of `ppl::__private`.

use proc_macro::TokenStream;

mod args;
mod derive;
mod expand;
mod krate;
mod rewrite;

/// Marks a model: `sample!`, `param!` and `plate!` in the body get site names from their `let`
/// bindings (`let z = sample!(dist)` is the site `"z"`), and the function starts a naming run
/// when called outside any trace. The function must return `ppl::Result<T>` (or another
/// `Result` whose error converts from `ppl::Error`): the macros propagate errors with `?`.
#[proc_macro_attribute]
pub fn model(attr: TokenStream, item: TokenStream) -> TokenStream {
    rewrite::attribute("model", attr.into(), item.into()).into()
}

/// Marks a guide; the same rewriting as [`macro@model`].
#[proc_macro_attribute]
pub fn guide(attr: TokenStream, item: TokenStream) -> TokenStream {
    rewrite::attribute("guide", attr.into(), item.into()).into()
}

/// A random choice: `sample!("name", dist)`, `sample!("name", dist, obs = x)`, with
/// `obs_mask = m` and `infer = cfg` too. Inside `#[model]`, `let z = sample!(dist)` names the
/// site `"z"`. Evaluates to the value (a `Tensor`); errors propagate with `?`.
#[proc_macro]
pub fn sample(input: TokenStream) -> TokenStream {
    expand::sample(input.into()).into()
}

/// A learnable value: `param!("name", init)`, `param!("name", init, constraint = positive)`,
/// `event_dim = k`; `param!("name")` reads an existing one. Inside `#[model]`,
/// `let w = param!(init)` names it `"w"`. `init` runs only the first time.
#[proc_macro]
pub fn param(input: TokenStream) -> TokenStream {
    expand::param(input.into()).into()
}

/// Conditional independence: `let _data = plate!("data", n)` (vectorized, until the end of the
/// scope), with `subsample_size = k`, `dim = -2`, `device = d`; `for i in plate!("data", n)`
/// inside `#[model]` iterates sequentially.
#[proc_macro]
pub fn plate(input: TokenStream) -> TokenStream {
    expand::plate(input.into()).into()
}

/// Implements `ppl::nn::Parametrized` for a struct of network parts (`tch::nn` layers, tensors,
/// other `Parametrized` structs, `Vec`s and `Option`s of them): each field's tensors under the
/// field's name, so `PyroModule` names a `Linear` field `fc1`'s weight `"fc1.weight"`.
/// `#[pyro(skip)]` leaves a field out (an activation choice, a size).
#[proc_macro_derive(Parametrized, attributes(pyro))]
pub fn derive_parametrized(input: TokenStream) -> TokenStream {
    derive::parametrized(input.into()).into()
}
