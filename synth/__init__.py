"""The synthesizer of SELD datasets (command: ``python synthesize_dataset.py``).

:mod:`synth.tut2018` (TUT Sound Events 2018 look-alikes) and :mod:`synth.dcase` (DCASE 2019-2024 look-alikes) plan
their layouts; :mod:`synth.driver` makes them (resume, stale files, progress, parallel map, ``dataset_info.json``,
``README.txt``). Both draw scenes from :mod:`synth.scenes`, sounds from :mod:`synth.sound_bank` and spatialize
them with :mod:`synth.spatial`. Imports run one way: driver, sound_bank, spatial <- scenes <- tut2018, dcase.
"""
