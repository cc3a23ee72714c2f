//! Expansion of `sample!`, `param!` and `plate!` into calls of `ppl::__private`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit};

use crate::args::Args;

fn or_error(r: syn::Result<TokenStream>) -> TokenStream {
    r.unwrap_or_else(syn::Error::into_compile_error)
}

/// A site-name expression: a plain literal stays a `&'static str`, a literal with `{...}` becomes
/// `format!`, anything else is converted with `ToString`.
fn name_tokens(e: &Expr) -> TokenStream {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            if s.value().contains('{') {
                quote_spanned!(s.span()=> ::std::format!(#s))
            } else {
                quote!(#s)
            }
        }
        other => quote_spanned!(other.span()=> ::std::string::ToString::to_string(&(#other))),
    }
}

fn is_str_lit(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Lit(ExprLit {
            lit: Lit::Str(_),
            ..
        })
    )
}

pub fn sample(input: TokenStream) -> TokenStream {
    or_error(sample_inner(input))
}

fn sample_inner(input: TokenStream) -> syn::Result<TokenStream> {
    let args = Args::parse_tokens(input)?;
    args.check_keywords(
        "sample",
        &["obs", "obs_mask", "infer", "enumerate", "expand"],
    )?;
    let (name, dist) = match args.positional.as_slice() {
        [name, dist] => (name_tokens(name), dist),
        [dist] => {
            return Err(syn::Error::new_spanned(
                dist,
                "cannot infer a site name here; write `sample!(\"name\", dist)`, or bind the \
                 value with `let name = sample!(dist)` inside a #[model] or #[guide] function",
            ))
        }
        _ => {
            return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                "expected `sample!(\"name\", dist)` or `sample!(\"name\", dist, obs = value)`",
            ))
        }
    };
    let obs = args.keyword("obs");
    let obs_mask = args.keyword("obs_mask");
    let p = {
        let rt = crate::krate::runtime();
        quote!(#rt::__private)
    };
    let infer = infer_tokens(&args)?;
    if obs_mask.is_none() && infer.is_none() {
        let obs = match obs {
            Some(o) => quote_spanned!(o.span()=> #p::IntoObs::into_obs(#o)),
            None => quote!(::core::option::Option::None),
        };
        return Ok(quote!(#p::sample(#name, #dist, #obs)?));
    }
    let obs = match obs {
        Some(o) => quote_spanned!(o.span()=> #p::IntoObs::into_obs(#o)),
        None => quote!(::core::option::Option::None),
    };
    let obs_mask = match obs_mask {
        Some(m) => quote_spanned!(m.span()=> #p::IntoObs::into_obs(#m)),
        None => quote!(::core::option::Option::None),
    };
    let infer = match infer {
        Some(i) => quote!(::core::option::Option::Some(#i)),
        None => quote!(::core::option::Option::None),
    };
    Ok(quote!(#p::sample_with(#name, #dist, #p::SampleOpts {
        obs: #obs, obs_mask: #obs_mask, infer: #infer,
    })?))
}

/// The `infer` settings of a `sample!`: `infer = ...`, with `enumerate = parallel | sequential`
/// and `expand = bool` applied on top.
fn infer_tokens(args: &Args) -> syn::Result<Option<TokenStream>> {
    let p = {
        let rt = crate::krate::runtime();
        quote!(#rt::__private)
    };
    let base = args.keyword("infer");
    let enumerate = args.keyword("enumerate");
    let expand = args.keyword("expand");
    if enumerate.is_none() && expand.is_none() {
        return Ok(base.map(|b| quote!(#b)));
    }
    let base = match base {
        Some(b) => quote!(#b),
        None => quote!(<#p::InferConfig as ::core::default::Default>::default()),
    };
    let set_enum = match enumerate {
        None => quote!(),
        Some(e) => {
            let which = match e {
                Expr::Path(path) if path.path.is_ident("parallel") => quote!(Parallel),
                Expr::Path(path) if path.path.is_ident("sequential") => quote!(Sequential),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "expected `enumerate = parallel` or `enumerate = sequential`",
                    ))
                }
            };
            quote!(__infer.enumerate = ::core::option::Option::Some(#p::Enumerate::#which);)
        }
    };
    let set_expand = match expand {
        None => quote!(),
        Some(x) => quote_spanned!(x.span()=> __infer.expand = #x;),
    };
    Ok(Some(quote!({
        let mut __infer: #p::InferConfig = #base;
        #set_enum
        #set_expand
        __infer
    })))
}

/// The Levenshtein distance between two short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Constraint names that may be written bare (`constraint = positive`).
const CONSTRAINTS: &[&str] = &[
    "real",
    "real_vector",
    "positive",
    "nonnegative",
    "unit_interval",
    "interval",
    "greater_than",
    "less_than",
    "simplex",
    "lower_cholesky",
    "positive_definite",
    "corr_cholesky",
    "integer_interval",
    "nonnegative_integer",
    "boolean",
];

fn constraint_tokens(e: &Expr) -> TokenStream {
    let single = |e: &Expr| match e {
        Expr::Path(p) if p.path.segments.len() == 1 && p.qself.is_none() => {
            Some(p.path.segments[0].ident.to_string())
        }
        _ => None,
    };
    let bare = match e {
        Expr::Path(_) => single(e).filter(|n| CONSTRAINTS.contains(&n.as_str())),
        Expr::Call(c) => single(&c.func).filter(|n| CONSTRAINTS.contains(&n.as_str())),
        _ => None,
    };
    if bare.is_none() {
        // A bare name one or two letters away from a known constraint is a misspelling (a
        // variable holding a `Constraint` is rarely named so); say so at compile time.
        let name = match e {
            Expr::Path(_) => single(e),
            Expr::Call(c) => single(&c.func),
            _ => None,
        };
        if let Some(n) = name {
            if let Some(close) = CONSTRAINTS.iter().find(|k| edit_distance(&n, k) <= 2) {
                let msg = format!(
                    "unknown constraint `{n}`; did you mean `{close}`? Known constraints: {}",
                    CONSTRAINTS.join(", ")
                );
                return syn::Error::new_spanned(e, msg).to_compile_error();
            }
        }
    }
    match (bare, e) {
        (Some(n), Expr::Path(_)) => {
            let id = syn::Ident::new(&n, e.span());
            {
                let rt = crate::krate::runtime();
                quote!(#rt::__private::constraints::#id())
            }
        }
        (Some(_), Expr::Call(_)) => {
            let rt = crate::krate::runtime();
            quote!(#rt::__private::constraints::#e)
        }
        _ => quote!(#e),
    }
}

pub fn param(input: TokenStream) -> TokenStream {
    or_error(param_inner(input))
}

fn param_inner(input: TokenStream) -> syn::Result<TokenStream> {
    let args = Args::parse_tokens(input)?;
    args.check_keywords("param", &["constraint", "event_dim"])?;
    let (name, init) =
        match args.positional.as_slice() {
            [name, init] => (name_tokens(name), Some(init)),
            [name] if is_str_lit(name) => (name_tokens(name), None),
            [init] => {
                return Err(syn::Error::new_spanned(
                    init,
                    "cannot infer a param name here; write `param!(\"name\", init)`, or bind the \
                 value with `let name = param!(init)` inside a #[model] or #[guide] function",
                ))
            }
            _ => return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                "expected `param!(\"name\", init)` or `param!(\"name\", init, constraint = ...)`",
            )),
        };
    let constraint = match args.keyword("constraint") {
        Some(c) => constraint_tokens(c),
        None => {
            let rt = crate::krate::runtime();
            quote!(#rt::__private::constraints::Constraint::Real)
        }
    };
    let event_dim = match args.keyword("event_dim") {
        Some(e) => quote!(::core::option::Option::Some(#e)),
        None => quote!(::core::option::Option::None),
    };
    let p = {
        let rt = crate::krate::runtime();
        quote!(#rt::__private)
    };
    Ok(match init {
        Some(Expr::Closure(c)) => quote!(#p::param_init(#name, #c, #constraint, #event_dim)?),
        Some(init) => quote!(#p::param_init(#name, || #init, #constraint, #event_dim)?),
        None => quote!(#p::param_existing(#name, #constraint, #event_dim)?),
    })
}

pub fn plate(input: TokenStream) -> TokenStream {
    or_error(plate_inner(input))
}

fn plate_inner(input: TokenStream) -> syn::Result<TokenStream> {
    let args = Args::parse_tokens(input)?;
    args.check_keywords("plate", &["subsample_size", "dim", "device"])?;
    let (name, size) = match args.positional.as_slice() {
        [name, size] => (name_tokens(name), size),
        other => {
            return Err(syn::Error::new(
                other
                    .first()
                    .map_or(proc_macro2::Span::call_site(), Spanned::span),
                "expected `plate!(\"name\", size)`, optionally with `subsample_size = k`, \
                 `dim = -2` or `device = d`",
            ))
        }
    };
    let calls = args.keywords.iter().map(|(k, v)| {
        if k == "device" {
            quote!(.#k(#v))
        } else {
            quote!(.#k((#v) as i64))
        }
    });
    let enter = if args.sequential.is_some() {
        quote!(sequential)
    } else {
        quote!(enter)
    };
    let rt = crate::krate::runtime();
    Ok(quote!(#rt::__private::Plate::new(#name, (#size) as i64) #(#calls)* .#enter()?))
}
