# Shim: Phew!'s logging imports network at the top (for nothing it uses when serving); the unix
# port has no network module. Left empty on purpose.
