# The main job (demo/run): xl create a guest, show it in xl list, attach its
# console until it powers off, show that it is gone. Not in the default
# scenario list (tests/lab/run demo runs it); xl-lifecycle asserts the same flow.
source "$REPO/tests/lab/lib.sh"
export PATH=$RXEN_BIN:$PATH
start_xenstored
trap 'xl destroy demo >/dev/null 2>&1 || true; kill $xsd 2>/dev/null || true' EXIT

run() { echo; echo "# $*"; "$@"; }
run xl create -p "$REPO/demo/demo.cfg" "kernel=\"$RXEN_GUEST_KERNEL\"" "ramdisk=\"$RXEN_INITRD_DEMO\""
run xl list
echo
echo "# xl console demo &  xl unpause demo   (the console shows the guest until it powers off)"
xl console demo </dev/null &
con=$!
sleep 1
xl unpause demo
wait $con
# on_poweroff = "destroy": the domain's monitor removes it.
for _ in $(seq 100); do xl domid demo >/dev/null 2>&1 || break; sleep 0.1; done
run xl list
