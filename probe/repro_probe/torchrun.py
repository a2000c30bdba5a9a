"""torchrun for script mode's ranks (script.nproc > 1): `python -m repro_probe.torchrun ARGS` is
`python -m torch.distributed.run ARGS` on one node, made to work where it does not as shipped:

- Debian's torch 2.x is built without libuv, yet torchrun's rendezvous store and the ranks' client of
  it ask for libuv (USE_LIBUV=0 does not reach them): every TCPStore defaults to use_libuv=False where
  the constructor takes it (stores_without_libuv, also applied in each rank by scriptrun);
- `--standalone` on torch < 2.0 listens on the fixed port 29400 (two audits at once collide): the
  rendezvous goes to 127.0.0.1 on a free port instead, as torch >= 2.0's standalone does;
- the ranks reach the node by its host name, which a container without a network cannot resolve:
  the node's address is 127.0.0.1 (--local-addr where torchrun has it);
- torch < 2.0 on Python >= 3.11 cannot parse its own default `--redirects 0` (an IntFlag change).
The ranks learn the launcher's pid (AGENT_PID_ENV) so that they end with it (scriptrun)."""

import os
import re
import sys
import uuid

AGENT_PID_ENV = "REPRO_PROBE_AGENT_PID"
LOCAL_ADDR = "127.0.0.1"


def stores_without_libuv():
    """Make torch.distributed's TCPStore default to use_libuv=False (where its constructor takes the
    switch), in the modules that bound the name at import. Returns whether anything was patched."""
    import torch.distributed as dist
    base = getattr(dist, "TCPStore", None)
    if base is None or getattr(base, "_repro_no_libuv", False):
        return False
    if "use_libuv" not in (getattr(base.__init__, "__doc__", None) or ""):
        return False  # torch < 2.2: no libuv store at all

    class TCPStore(base):
        _repro_no_libuv = True

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("use_libuv", False)
            base.__init__(self, *args, **kwargs)
    TCPStore.__name__ = TCPStore.__qualname__ = "TCPStore"
    dist.TCPStore = TCPStore
    for name in ("torch.distributed.rendezvous", "torch.distributed.distributed_c10d",
                 "torch.distributed.elastic.rendezvous.c10d_rendezvous_backend",
                 "torch.distributed.elastic.rendezvous.static_tcp_rendezvous",
                 "torch.distributed.elastic.utils.distributed"):
        module = _import(name)
        if module is not None and getattr(module, "TCPStore", None) is base:
            module.TCPStore = TCPStore
    return True


def _import(name):
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _fix_std_from_str():
    """torch < 2.0 on Python >= 3.11: Std.from_str('0') is None (iterating an IntFlag skips 0 and
    aliases), which ends torchrun before it starts anything."""
    api = _import("torch.distributed.elastic.multiprocessing.api")
    std = getattr(api, "Std", None)
    if std is None or std.from_str("0") is not None:
        return

    def from_str(vm):
        if re.match(r"^[0-3]$", vm):
            return std(int(vm))
        if re.match(r"^(\d:[0-3],)*(\d:[0-3])$", vm):
            return dict((int(i), std(int(v))) for i, v in (m.split(":") for m in vm.split(",")))
        raise ValueError("%s is not a redirect setting" % vm)
    std.from_str = staticmethod(from_str)


def _local_rendezvous(args):
    """One node on 127.0.0.1: the c10d rendezvous on a free port, the ranks' master address 127.0.0.1."""
    args.standalone = False
    args.rdzv_backend = "c10d"
    args.rdzv_endpoint = "%s:0" % LOCAL_ADDR
    args.rdzv_id = str(uuid.uuid4())
    args.nnodes = "1:1"
    if hasattr(args, "local_addr"):
        args.local_addr = LOCAL_ADDR
    else:  # torch < 2.4: the master address is the host's fully qualified name
        agent_api = _import("torch.distributed.elastic.agent.server.api")
        if agent_api is not None and hasattr(agent_api, "_get_fq_hostname"):
            agent_api._get_fq_hostname = lambda: LOCAL_ADDR


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    stores_without_libuv()
    _fix_std_from_str()
    from torch.distributed import run as torchrun
    args = torchrun.parse_args(argv)
    _local_rendezvous(args)
    os.environ[AGENT_PID_ENV] = str(os.getpid())
    try:
        torchrun.run(args)
    except Exception as e:  # a rank failed (ChildFailedError): the agent has logged which and why
        sys.stderr.write("repro_probe.torchrun: %s: %s\n" % (type(e).__name__, str(e).strip().split("\n")[0][:300]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
