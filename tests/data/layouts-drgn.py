# Independent expected values for tests/debuginfo_real.rs: member offsets and sizes read by drgn
# (its own DWARF reader) from the fixture vmlinux. Regenerate with:
#   L=~/.cache/vmcore-report/fixtures/x86_64-6.1-l5
#   drgn -q -c $L/vmcore.elf -s $L/vmlinux tests/data/layouts-drgn.py > tests/data/layouts-x86_64-6.1.txt
# Format: TYPE|MEMBER|OFFSET|SIZE (bytes), and TYPE|size|SIZE.
from drgn import offsetof, sizeof

MEMBERS = {
    "struct task_struct": ["__state", "stack", "flags", "on_cpu", "prio", "static_prio", "se",
                           "se.run_node", "se.vruntime", "se.group_node", "sched_class", "tasks",
                           "mm", "pid", "tgid", "real_parent", "children", "comm", "cpus_mask"],
    "struct rq": ["nr_running", "nr_switches", "nr_uninterruptible", "cfs", "rt", "curr", "idle",
                  "clock", "clock_task", "cpu", "cfs_tasks", "nr_iowait"],
    "struct cfs_rq": ["load", "load.weight", "nr_running", "h_nr_running", "min_vruntime",
                      "tasks_timeline", "curr", "next", "avg", "rq", "on_list", "tg"],
    "struct new_utsname": ["sysname", "nodename", "release", "version", "machine", "domainname"],
}
for t, members in MEMBERS.items():
    ty = prog.type(t)
    print(f"{t}|size|{sizeof(ty)}")
    for m in members:
        mt = ty
        for part in m.split("."):
            mt = mt.member(part).type
        print(f"{t}|{m}|{offsetof(ty, m)}|{sizeof(mt)}")
