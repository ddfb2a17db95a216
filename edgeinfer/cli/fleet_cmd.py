"""`edgeinfer keygen` and `edgeinfer sign`: Ed25519 keys and bundle signatures (docs/fleet.md)."""
from __future__ import annotations

import click


@click.command("keygen")
@click.argument("prefix", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
def keygen(prefix: str, force: bool) -> None:
    """Write PREFIX.key (private, mode 0600: keep it on the build host) and PREFIX.pub (copy to devices)."""
    from ..fleet.keys import fingerprint, generate_keypair, load_public_key

    key_path, pub_path = generate_keypair(prefix, force=force)
    click.echo(f"wrote {key_path} (private, 0600) and {pub_path} (public, fingerprint {fingerprint(load_public_key(pub_path))})")


@click.command("sign")
@click.argument("bundle", type=click.Path(exists=True))
@click.argument("key", type=click.Path(exists=True, dir_okay=False))
def sign(bundle: str, key: str) -> None:
    """Sign BUNDLE (directory or .tar) with KEY (PREFIX.key from `edgeinfer keygen`): writes manifest.sig."""
    from ..fleet.trust import sign_bundle

    record = sign_bundle(bundle, key)
    click.echo(f"signed {bundle}: manifest sha256 {record['signed_sha256'][:16]}... by key {record['key_id']}")
