"""The sans-IO VRRP protocol core.

Owns protocol decisions: states, timers, priorities, tracker weights. Must not
touch sockets, clocks, asyncio, subprocesses or netlink: every input carries
`now`, every output is an action for the shell to carry out.
"""
