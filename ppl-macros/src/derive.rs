//! `#[derive(Parametrized)]`: a struct's tensors by path, for `ppl::nn::PyroModule`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields};

use crate::krate::runtime;

/// Whether a field carries `#[pyro(skip)]`.
fn skipped(attrs: &[syn::Attribute]) -> syn::Result<bool> {
    let mut skip = false;
    for a in attrs.iter().filter(|a| a.path().is_ident("pyro")) {
        a.parse_nested_meta(|m| {
            if m.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(m.error("expected `#[pyro(skip)]`"))
            }
        })?;
    }
    Ok(skip)
}

/// The impl of `Parametrized`: each field's tensors under the field's name (tuple fields under
/// their index), in declaration order.
pub fn parametrized(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(t) => t,
        Err(e) => e.to_compile_error(),
    }
}

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let rt = runtime();
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Parametrized)] works on structs (their fields are the network's parts)",
        ));
    };
    let mut visits = Vec::new();
    let fields: Vec<(TokenStream, String, &syn::Field)> = match &data.fields {
        Fields::Named(f) => f
            .named
            .iter()
            .filter_map(|f| f.ident.as_ref().map(|id| (quote!(#id), id.to_string(), f)))
            .collect(),
        Fields::Unnamed(f) => f
            .unnamed
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let idx = syn::Index::from(i);
                (quote!(#idx), i.to_string(), f)
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
    for (access, name, field) in fields {
        if skipped(&field.attrs)? {
            continue;
        }
        visits.push(quote! {
            #rt::nn::Parametrized::visit_params(
                &mut self.#access,
                &#rt::nn::join(prefix, #name),
                f,
            )?;
        });
    }
    let ident = &input.ident;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_g #rt::nn::Parametrized for #ident #ty_g #where_g {
            fn visit_params(
                &mut self,
                prefix: &str,
                f: &mut dyn FnMut(&str, &mut #rt::tch::Tensor) -> #rt::Result<()>,
            ) -> #rt::Result<()> {
                #(#visits)*
                Ok(())
            }
        }
    })
}
