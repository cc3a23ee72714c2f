//! The `#[model]`/`#[guide]` attribute: walks the body, names `sample!`/`param!` sites after their
//! `let` bindings, turns `for i in plate!(...)` into a sequential plate, and reports misuse with
//! errors spanned on the offending tokens (all of them at once).

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, ExprMacro, ItemFn, Local, LocalInit, Macro, Pat, ReturnType, Stmt};

use crate::args::Args;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Sample,
    Param,
    Plate,
}

fn macro_kind(m: &Macro) -> Option<Kind> {
    let last = m.path.segments.last()?.ident.to_string();
    match last.as_str() {
        "sample" => Some(Kind::Sample),
        "param" => Some(Kind::Param),
        "plate" => Some(Kind::Plate),
        _ => None,
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Sample => "sample",
        Kind::Param => "param",
        Kind::Plate => "plate",
    }
}

struct Rewriter {
    errors: Option<syn::Error>,
}

impl Rewriter {
    fn error(&mut self, e: syn::Error) {
        match &mut self.errors {
            None => self.errors = Some(e),
            Some(all) => all.combine(e),
        }
    }

    /// Reports `sample!(...)?` and continues as if the `?` were not there (no follow-up errors).
    fn strip_question_mark(&mut self, e: &mut Expr) -> bool {
        let Expr::Try(t) = e else { return false };
        let Some(m) = as_our_macro(&mut t.expr) else {
            return false;
        };
        let k = macro_kind(&m.mac).map_or("sample", kind_name);
        self.error(syn::Error::new_spanned(
            t.question_token,
            format!("`{k}!` already propagates errors with `?`; remove this `?`"),
        ));
        let inner = (*t.expr).clone();
        *e = inner;
        true
    }

    /// Rewrites the arguments of one of our macros (recursively) and, when `name` is given and
    /// the call has no explicit name, inserts it.
    fn rewrite_macro(&mut self, m: &mut Macro, name: Option<(String, Span)>, sequential: bool) {
        let Some(kind) = macro_kind(m) else { return };
        let mut args = match Args::parse_tokens(m.tokens.clone()) {
            Ok(a) => a,
            Err(e) => {
                self.error(e);
                return;
            }
        };
        for e in args.positional.iter_mut() {
            self.visit_expr_mut(e);
        }
        for (_, e) in args.keywords.iter_mut() {
            self.visit_expr_mut(e);
        }
        let explicit = match kind {
            Kind::Sample => args.positional.len() >= 2,
            Kind::Param => {
                args.positional.len() >= 2
                    || matches!(
                        args.positional.first(),
                        Some(Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(_),
                            ..
                        }))
                    )
            }
            Kind::Plate => true,
        };
        let inserted = match name {
            Some((n, span)) if !explicit => {
                let lit = syn::LitStr::new(&n, span);
                Some(quote!(#lit))
            }
            _ => None,
        };
        if sequential && args.sequential.is_none() {
            args.sequential = Some(syn::Token![for](m.path.segments[0].ident.span()));
        }
        let tokens = args.to_tokens(inserted);
        let span = m
            .path
            .segments
            .last()
            .map_or(Span::call_site(), |s| s.ident.span());
        let id = syn::Ident::new(kind_name(kind), span);
        let rt = crate::krate::runtime_at(span);
        m.path = syn::parse_quote_spanned!(span=> #rt::#id);
        m.tokens = tokens;
    }
}

/// The site name a pattern gives: the identifier, without `mut` and leading underscores.
fn pat_name(p: &Pat) -> Option<(String, Span)> {
    match p {
        Pat::Ident(i) => {
            let s = i.ident.to_string();
            let trimmed = s.trim_start_matches('_');
            if trimmed.is_empty() {
                None
            } else {
                Some((trimmed.to_string(), i.ident.span()))
            }
        }
        Pat::Type(t) => pat_name(&t.pat),
        _ => None,
    }
}

fn as_our_macro(e: &mut Expr) -> Option<&mut ExprMacro> {
    match e {
        Expr::Macro(m) if macro_kind(&m.mac).is_some() => Some(m),
        _ => None,
    }
}

impl VisitMut for Rewriter {
    fn visit_local_mut(&mut self, local: &mut Local) {
        if let Some(LocalInit { expr, diverge, .. }) = &mut local.init {
            self.strip_question_mark(expr);
            if let Some(m) = as_our_macro(expr) {
                let kind = macro_kind(&m.mac);
                if kind == Some(Kind::Plate) && matches!(local.pat, Pat::Wild(_)) {
                    self.error(syn::Error::new_spanned(
                        &local.pat,
                        "`let _ = plate!(...)` ends the plate at once; bind it to a name, e.g. \
                         `let _data = plate!(...)`",
                    ));
                }
                let name = pat_name(&local.pat);
                self.rewrite_macro(&mut m.mac, name, false);
                if let Some((_, d)) = diverge {
                    self.visit_expr_mut(d);
                }
                return;
            }
        }
        visit_mut::visit_local_mut(self, local);
    }

    fn visit_expr_mut(&mut self, e: &mut Expr) {
        if self.strip_question_mark(e) {
            self.visit_expr_mut(e);
            return;
        }
        match e {
            Expr::Assign(a) => {
                let name = match &*a.left {
                    Expr::Path(p) if p.path.segments.len() == 1 => {
                        let id = &p.path.segments[0].ident;
                        Some((id.to_string(), id.span()))
                    }
                    _ => None,
                };
                if let Some(m) = as_our_macro(&mut a.right) {
                    self.rewrite_macro(&mut m.mac, name, false);
                    return;
                }
            }
            Expr::ForLoop(f) => {
                if let Some(m) = as_our_macro(&mut f.expr) {
                    if macro_kind(&m.mac) == Some(Kind::Plate) {
                        self.rewrite_macro(&mut m.mac, None, true);
                        self.visit_block_mut(&mut f.body);
                        return;
                    }
                }
            }
            Expr::Macro(m) if macro_kind(&m.mac).is_some() => {
                self.rewrite_macro(&mut m.mac, None, false);
                return;
            }
            _ => {}
        }
        visit_mut::visit_expr_mut(self, e);
    }

    fn visit_stmt_mut(&mut self, s: &mut Stmt) {
        if let Stmt::Macro(sm) = s {
            let kind = macro_kind(&sm.mac);
            if kind.is_some() {
                self.rewrite_macro(&mut sm.mac, None, false);
                // A value-producing macro used as a statement: discard its value explicitly.
                if kind != Some(Kind::Plate) {
                    let mac = &sm.mac;
                    *s = syn::parse_quote!(let _ = #mac;);
                }
                return;
            }
        }
        visit_mut::visit_stmt_mut(self, s);
    }
}

pub fn attribute(which: &str, attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = item.clone();
    let mut f: ItemFn = match syn::parse2(item) {
        Ok(f) => f,
        Err(e) => {
            let e = syn::Error::new(e.span(), format!("#[{which}] goes on a function: {e}"));
            let err = e.into_compile_error();
            return quote!(#err #original);
        }
    };
    let mut rw = Rewriter { errors: None };
    if !attr.is_empty() {
        rw.error(syn::Error::new_spanned(
            &attr,
            format!("#[{which}] takes no arguments"),
        ));
    }
    let no_result = matches!(f.sig.output, ReturnType::Default);
    if no_result {
        rw.error(syn::Error::new_spanned(
            &f.sig.ident,
            format!(
                "a #[{which}] function must return `ppl::Result<T>` (sample!, param! and plate! \
                 propagate errors with `?`); add `-> ppl::Result<()>`"
            ),
        ));
    }
    if f.sig.asyncness.is_some() {
        rw.error(syn::Error::new_spanned(
            f.sig.asyncness,
            format!("a #[{which}] function cannot be async"),
        ));
    }
    if no_result {
        // The body cannot compile without a Result to propagate into; keep only the signature.
        let err = rw.errors.map(syn::Error::into_compile_error);
        f.block = syn::parse_quote!({ ::core::unimplemented!() });
        return quote!(#err #f);
    }
    rw.visit_block_mut(&mut f.block);
    if let Some(e) = rw.errors {
        // Still emit the (rewritten) function, so IDEs and other diagnostics keep working.
        let err = e.into_compile_error();
        return quote!(#err #f);
    }
    let body = &f.block;
    let rt = crate::krate::runtime();
    f.block = syn::parse_quote!({
        let __ppl_run = #rt::__private::enter_model();
        #body
    });
    quote!(#f)
}
