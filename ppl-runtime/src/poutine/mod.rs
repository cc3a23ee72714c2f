//! Effect handlers (Pyro's `poutine`). One handler per file; each has three faces: the struct
//! (`ReplayMessenger`), the guard (`let _g = ReplayMessenger::new(tr).enter();`) and the closure
//! form (`poutine::replay(tr, || model())`).

pub mod block;
pub mod condition;
pub mod config_enumerate;
pub mod do_messenger;
pub mod enum_messenger;
pub mod escape;
pub mod infer_config;
pub mod lift;
pub mod markov;
pub mod mask;
pub mod plate;
pub mod queue;
pub mod reparam;
pub mod replay;
pub mod runtime;
pub mod scale;
pub mod seed;
pub mod substitute;
pub mod trace;
pub mod trace_struct;
pub mod uncondition;

pub use block::{block, BlockMessenger};
pub use condition::{condition, data, ConditionMessenger, Data};
pub use config_enumerate::{config_enumerate, ConfigEnumerateMessenger};
pub use do_messenger::{do_, DoMessenger};
pub use enum_messenger::{enum_, EnumMessenger};
pub use escape::{escape, EscapeMessenger, EscapedSite};
pub use infer_config::{infer_config, InferConfigMessenger};
pub use lift::{lift, LiftMessenger, Priors};
pub use markov::{markov, markov_step, Markov, MarkovMessenger};
pub use mask::{mask, MaskMessenger};
pub use plate::{Plate, PlateGuard, PlateMessenger, SequentialPlate};
pub use queue::{discrete_escape, enum_extend, queue};
pub use reparam::{reparam, Reparam, ReparamConfig, ReparamMessenger, ReparamSite};
pub use replay::{replay, ReplayMessenger};
pub use runtime::{
    apply_stack, CondIndepFrame, Enumerate, Handler, HandlerGuard, InferConfig, MarkovScope,
    Messenger, Msg, NnBaseline, SiteKind,
};
pub use scale::{scale, ScaleMessenger};
pub use seed::{seed, SeedMessenger};
pub use substitute::{substitute, SubstituteMessenger};
pub use trace::{trace, TraceMessenger};
pub use trace_struct::{scale_and_mask, Site, Trace};
pub use uncondition::{uncondition, UnconditionMessenger};
