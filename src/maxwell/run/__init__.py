"""The imperative shell: the live tick loop, the parts it is built from, and the
`run`, `demo`, `baseline` and `config` commands.

`maxwell.run.parts` types every part the loop touches (clock, physics sampler,
membrane, memory tracer, agent channel, sinks, policy); `maxwell.run.loop` is the
tick loop over those parts; `maxwell.run.build` probes this machine and chooses
the real ones. May import every package below it (see DESIGN.md's table).
"""
