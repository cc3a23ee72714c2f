//! Models and guides that take arguments (Pyro's `svi.step(x, y)`, `model(*args, **kwargs)`).
//!
//! A model is an ordinary function. One that takes its data as arguments is called through
//! [`ModelFn`]: a function of one reference argument is called with that reference
//! (`svi.step_with(&x)` for `fn model(x: &Tensor)`), a function of two to four arguments with a
//! tuple of them (`svi.step_with((&x, &y))` for `fn model(x: &Tensor, y: &Tensor)`). The
//! arguments' tensors ([`ModelArgs`]) are what a compiled step ([`crate::infer::JitTraceElbo`])
//! takes as inputs, so a new minibatch of the same shape runs the same program.
//!
//! [`bind`] turns a model and its arguments into the argument-less closure the other inference
//! algorithms take (`Predictive`, `Importance`, `Mcmc`, the autoguides).

use tch::Tensor;

use crate::error::Result;

/// A function called with arguments of type `A` (a reference, or a tuple of two to four
/// arguments), returning `Result<R>`.
///
/// Implemented for every `FnMut(&T) -> Result<R>` (with `A = &T`) and every
/// `FnMut(A1, .., An) -> Result<R>` for `n` from 2 to 4 (with `A = (A1, .., An)`). Functions
/// written with `#[model]` and `#[guide]` are such functions.
pub trait ModelFn<A, R> {
    /// Calls the function with `args`.
    fn call_with(&mut self, args: A) -> Result<R>;
}

impl<'a, F, R, T> ModelFn<&'a T, R> for F
where
    T: ?Sized + 'a,
    F: FnMut(&'a T) -> Result<R>,
{
    fn call_with(&mut self, args: &'a T) -> Result<R> {
        self(args)
    }
}

macro_rules! tuple_model_fn {
    ($($a:ident),+) => {
        impl<F, R, $($a),+> ModelFn<($($a,)+), R> for F
        where
            F: FnMut($($a),+) -> Result<R>,
        {
            #[allow(non_snake_case)]
            fn call_with(&mut self, ($($a,)+): ($($a,)+)) -> Result<R> {
                self($($a),+)
            }
        }

        impl<$($a: ModelArgs),+> ModelArgs for ($($a,)+) {
            #[allow(non_snake_case)]
            fn tensors(&self, out: &mut Vec<Tensor>) {
                let ($($a,)+) = self;
                $($a.tensors(out);)+
            }
        }
    };
}

tuple_model_fn!(A1, A2);
tuple_model_fn!(A1, A2, A3);
tuple_model_fn!(A1, A2, A3, A4);

/// What a compiled step needs to know of a model's arguments: the tensors among them, in a
/// fixed order. A compiled program takes these as inputs, so it runs again on new data of the
/// same shapes without being traced again. Everything else an argument holds (numbers, sizes,
/// flags) is fixed when the program is traced.
///
/// Implement it for a struct of arguments by pushing each tensor field in turn.
pub trait ModelArgs {
    /// Appends the tensors among the arguments to `out`.
    fn tensors(&self, out: &mut Vec<Tensor>);
}

impl ModelArgs for Tensor {
    fn tensors(&self, out: &mut Vec<Tensor>) {
        out.push(self.shallow_clone());
    }
}

impl<T: ModelArgs + ?Sized> ModelArgs for &T {
    fn tensors(&self, out: &mut Vec<Tensor>) {
        (**self).tensors(out)
    }
}

impl<T: ModelArgs> ModelArgs for [T] {
    fn tensors(&self, out: &mut Vec<Tensor>) {
        for t in self {
            t.tensors(out);
        }
    }
}

impl<T: ModelArgs> ModelArgs for Vec<T> {
    fn tensors(&self, out: &mut Vec<Tensor>) {
        self.as_slice().tensors(out)
    }
}

impl<T: ModelArgs> ModelArgs for Option<T> {
    fn tensors(&self, out: &mut Vec<Tensor>) {
        if let Some(t) = self {
            t.tensors(out);
        }
    }
}

macro_rules! no_tensors {
    ($($t:ty),*) => {
        $(impl ModelArgs for $t {
            fn tensors(&self, _out: &mut Vec<Tensor>) {}
        })*
    };
}

no_tensors!((), bool, f32, f64, i32, i64, u32, u64, usize, str, String);

/// The tensors among `args`, in order.
pub fn arg_tensors<A: ModelArgs + ?Sized>(args: &A) -> Vec<Tensor> {
    let mut out = Vec::new();
    args.tensors(&mut out);
    out
}

/// `model` with its arguments bound: the argument-less closure that `Predictive`, `Importance`,
/// `Mcmc` and the autoguides take.
///
/// ```
/// use ppl::prelude::*;
/// use ppl::infer::bind;
///
/// #[model]
/// fn model(x: &Tensor) -> ppl::Result<()> {
///     let loc = sample!(Normal::new(0.0, 1.0)?);
///     let _d = plate!("data", x.size()[0]);
///     sample!("x", Normal::new(&loc, 1.0)?, obs = x);
///     Ok(())
/// }
///
/// # fn main() -> ppl::Result<()> {
/// let x = Tensor::from_slice(&[0.5f32, 1.5]);
/// let guide = AutoNormal::new(bind(model, &x));
/// guide.call()?;
/// # Ok(()) }
/// ```
pub fn bind<A: Copy, R>(mut model: impl ModelFn<A, R>, args: A) -> impl FnMut() -> Result<R> {
    move || model.call_with(args)
}
