"""Writes ppl-runtime/tests/fixtures/transforms.json: inputs, outputs and log-Jacobians of Pyro's
and torch's transforms that ppl reimplements, so that tests/transforms.rs checks ppl's values
against theirs exactly (float64).

Run with the peers' venv (torch + pyro):  ~/.cache/ppl/peers/bin/python scripts/make_transform_fixtures.py
"""
import json
import pathlib

import torch
import pyro.distributions.transforms as T
from torch.distributions import transforms as tt

torch.set_default_dtype(torch.float64)
torch.manual_seed(0)


def case(name, t, x, ladj=True):
    y = t(x)
    out = {"name": name, "x": x.tolist(), "x_shape": list(x.shape), "y": y.flatten().tolist(),
           "y_shape": list(y.shape)}
    if ladj:
        out["ladj"] = t.log_abs_det_jacobian(x, y).flatten().tolist()
    return out


cases = []
x = torch.randn(3, 8)
cases.append(case("dct", T.DiscreteCosineTransform(dim=-1, smooth=0.0), x))
cases.append(case("dct_smooth1", T.DiscreteCosineTransform(dim=-1, smooth=1.0), x))
cases.append(case("dct_smooth-0.5_dim-2", T.DiscreteCosineTransform(dim=-2, smooth=-0.5),
                  torch.randn(2, 5, 3)))
cases.append(case("haar", T.HaarTransform(dim=-1, flip=False), x))
cases.append(case("haar_odd_flip", T.HaarTransform(dim=-1, flip=True), torch.randn(2, 7)))
p = torch.distributions.Dirichlet(torch.ones(5)).sample((3,))
cases.append(case("simplex_to_ordered", T.SimplexToOrderedTransform(torch.tensor(0.3)), p))
cases.append(case("simplex_to_ordered_anchor0", T.SimplexToOrderedTransform(torch.tensor(0.0)), p))
anchor = torch.tensor([0.3, -1.0, 2.0])
cases.append(case("simplex_to_ordered_batched", T.SimplexToOrderedTransform(anchor), p))
cases[-1]["anchor"] = anchor.tolist()
cases.append(case("ordered", T.OrderedTransform(), torch.randn(3, 4)))
r = torch.distributions.LKJCholesky(4, 1.5).sample((2,))
corr = r @ r.transpose(-1, -2)
cases.append(case("corr_matrix_cholesky", T.CorrMatrixCholeskyTransform(), corr))
cases.append(case("tanh", tt.TanhTransform(), torch.randn(6) * 3))
cases.append(case("power", tt.PowerTransform(torch.tensor(2.5)), torch.rand(6) + 0.1))
loc, scale = torch.randn(4), torch.rand(4) + 0.5
cases.append(case("affine_tensor", tt.AffineTransform(loc, scale), torch.randn(3, 4)))
cases[-1]["loc"] = loc.tolist()
cases[-1]["scale"] = scale.tolist()
st = torch.randn(3, 3).tril()
st.diagonal().copy_(torch.rand(3) + 0.5)
lca = T.LowerCholeskyAffine(loc=torch.randn(3), scale_tril=st)
cases.append(case("lower_cholesky_affine", lca, torch.randn(2, 3)))
cases[-1]["loc"] = lca.loc.tolist()
cases[-1]["scale_tril"] = st.flatten().tolist()
cases.append(case("cdf_normal", tt.CumulativeDistributionTransform(
    torch.distributions.Normal(0.5, 2.0)), torch.randn(5)))

out = pathlib.Path(__file__).resolve().parent.parent / "ppl-runtime/tests/fixtures/transforms.json"
out.write_text(json.dumps({"torch": torch.__version__, "cases": cases}, indent=1))
print(f"wrote {out} ({len(cases)} cases)")
