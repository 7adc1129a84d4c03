#!/usr/bin/env python3
"""A stand-in interpreter for ``tools/install/install_env.sh`` (see ``test_install_env.py``).

It answers exactly the calls the install script makes, without installing anything, and logs each call
with its working directory to ``$FAKE_PYTHON_LOG`` (one JSON object a line):

- ``-m venv DIR``: creates ``DIR/bin/python`` as a copy of this file;
- ``-m pip ... download ... -d DIR``: writes an mmcv sdist whose ``setup.py`` hard-codes ``-std=c++17``;
- ``-m pip ... wheel ... -w DIR .``: records the C++ standard in ``./setup.py`` and writes a wheel into DIR
  (relative to the working directory, as pip does);
- ``-m pip ...`` otherwise: succeeds;
- ``-c CODE``: answers the script's probes (mmcv not installed yet, cp311, c++20, environment ready).
"""
import io
import json
import os
import shutil
import sys
import tarfile


def log(**entry) -> None:
    entry.update(cwd=os.getcwd(), argv=sys.argv[1:])
    with open(os.environ['FAKE_PYTHON_LOG'], 'a') as f:
        f.write(json.dumps(entry) + '\n')


def option(args: list, name: str) -> str:
    return args[args.index(name) + 1]


def pip(args: list) -> int:
    command = next(a for a in args if not a.startswith('-'))
    if command == 'download':
        out = option(args, '-d')
        os.makedirs(out, exist_ok=True)
        setup = b'extra_compile_args = ["-std=c++17"]\n'
        with tarfile.open(os.path.join(out, 'mmcv-2.1.0.tar.gz'), 'w:gz') as tar:
            info = tarfile.TarInfo('mmcv-2.1.0/setup.py')
            info.size = len(setup)
            tar.addfile(info, io.BytesIO(setup))
        log(action='download', dest=os.path.abspath(out))
    elif command == 'wheel':
        with open('setup.py') as f:
            setup = f.read()
        out = option(args, '-w')
        os.makedirs(out, exist_ok=True)
        open(os.path.join(out, 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'), 'w').close()
        log(action='wheel',
            dest=os.path.abspath(out),
            cxx20='-std=c++20' in setup,
            env={k: os.environ.get(k)
                 for k in ('MMCV_WITH_OPS', 'FORCE_CUDA')})
    else:
        log(action='pip')
    return 0


def main() -> int:
    args = sys.argv[1:]
    if args[:2] == ['-m', 'venv']:
        os.makedirs(os.path.join(args[2], 'bin'), exist_ok=True)
        target = os.path.join(args[2], 'bin', 'python')
        shutil.copy(__file__, target)
        os.chmod(target, 0o755)
        log(action='venv', dest=os.path.abspath(args[2]))
        return 0
    if args[:2] == ['-m', 'pip']:
        return pip(args[2:])
    if args[:1] == ['-c']:
        code = args[1]
        log(action='probe')
        if 'import mmcv, mmcv.ops' in code or 'torch.cuda.is_available' in code:
            return 1  # mmcv not installed yet / no GPU
        if 'version_info' in code:
            print('cp311')
        elif 'c++20' in code:
            print('c++20')
        elif 'anomseg_plugins' in code:
            print('environment ready (fake)')
        return 0
    log(action='unknown')
    return 2


if __name__ == '__main__':
    sys.exit(main())
