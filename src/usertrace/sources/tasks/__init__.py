"""Task events of traced processes: the signals delivered to them and their ends, as the
kernel's ``signal:signal_deliver`` and ``sched:sched_process_exit`` record them."""
