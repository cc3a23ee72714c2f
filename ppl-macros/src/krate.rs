//! The path of the runtime crate in the code the macros expand into.

use proc_macro2::{Span, TokenStream};
use quote::quote;

/// `::ppl`, or `::NAME` when the user's Cargo.toml renames the dependency
/// (`pyro = { package = "ppl-runtime", ... }`): the macros' expansions call
/// `#runtime::__private::...`.
///
/// `proc-macro-crate` reads the `Cargo.toml` of the crate being compiled. A dependency that is
/// not renamed is known to code by the runtime's library name, `ppl`, which `proc-macro-crate`
/// does not see (it reports the package name, `ppl_runtime`); so does the runtime's own crate
/// (its doctests and integration tests).
pub fn runtime() -> TokenStream {
    runtime_at(Span::call_site())
}

/// [`runtime`], its identifier spanned at `span` (for paths that name the macros themselves).
pub fn runtime_at(span: Span) -> TokenStream {
    use proc_macro_crate::{crate_name, FoundCrate};
    let name = match crate_name("ppl-runtime") {
        Ok(FoundCrate::Name(name)) if name != "ppl_runtime" => name,
        _ => "ppl".to_string(),
    };
    let id = syn::Ident::new(&name, span);
    quote!(::#id)
}
