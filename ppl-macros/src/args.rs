//! Parsing the arguments of `sample!`, `param!` and `plate!`: positional expressions followed by
//! `key = value` pairs.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Token};

/// One argument.
pub enum Arg {
    Positional(Expr),
    Keyword(Ident, Expr),
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let key: Ident = input.parse()?;
            let _: Token![=] = input.parse()?;
            let value: Expr = input.parse()?;
            Ok(Arg::Keyword(key, value))
        } else {
            Ok(Arg::Positional(input.parse()?))
        }
    }
}

/// All arguments of one macro call, plus a leading `for` marker (sequential plates).
pub struct Args {
    pub sequential: Option<Token![for]>,
    pub positional: Vec<Expr>,
    pub keywords: Vec<(Ident, Expr)>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let sequential = if input.peek(Token![for]) {
            Some(input.parse()?)
        } else {
            None
        };
        let list = Punctuated::<Arg, Token![,]>::parse_terminated(input)?;
        let mut positional = Vec::new();
        let mut keywords: Vec<(Ident, Expr)> = Vec::new();
        for a in list {
            match a {
                Arg::Positional(e) => {
                    if let Some((k, _)) = keywords.first() {
                        return Err(syn::Error::new_spanned(
                            e,
                            format!("positional arguments must come before `{k} = ...`"),
                        ));
                    }
                    positional.push(e)
                }
                Arg::Keyword(k, v) => {
                    if keywords.iter().any(|(k2, _)| k2 == &k) {
                        return Err(syn::Error::new_spanned(k, "this argument is given twice"));
                    }
                    keywords.push((k, v))
                }
            }
        }
        Ok(Args {
            sequential,
            positional,
            keywords,
        })
    }
}

impl Args {
    pub fn parse_tokens(tokens: TokenStream) -> syn::Result<Args> {
        syn::parse2(tokens)
    }

    /// Errors on a keyword not in `allowed`.
    pub fn check_keywords(&self, mac: &str, allowed: &[&str]) -> syn::Result<()> {
        let mut err: Option<syn::Error> = None;
        for (k, _) in &self.keywords {
            if !allowed.iter().any(|a| k == a) {
                let e = syn::Error::new_spanned(
                    k,
                    format!(
                        "unknown argument `{k}` of {mac}!; expected one of: {}",
                        allowed.join(", ")
                    ),
                );
                match &mut err {
                    None => err = Some(e),
                    Some(all) => all.combine(e),
                }
            }
        }
        err.map_or(Ok(()), Err)
    }

    pub fn keyword(&self, k: &str) -> Option<&Expr> {
        self.keywords.iter().find(|(i, _)| i == k).map(|(_, e)| e)
    }

    /// Re-emits the arguments (after rewriting), with `name` inserted first when given.
    pub fn to_tokens(&self, name: Option<TokenStream>) -> TokenStream {
        let seq = &self.sequential;
        let pos = &self.positional;
        let keys = self.keywords.iter().map(|(k, v)| quote::quote!(#k = #v));
        let name = name.map(|n| quote::quote!(#n,));
        quote::quote!(#seq #name #(#pos,)* #(#keys),*)
    }
}
