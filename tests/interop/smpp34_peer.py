#!/usr/bin/env python3
"""An SMS centre the gateway did not write: smpp34 (PyPI, an independent SMPP 3.4 implementation),
for tests/sms_interop.rs.

    python3 tests/interop/smpp34_peer.py serve PORT LOG   # SMSC on 127.0.0.1:PORT, JSON lines to LOG
    python3 tests/interop/smpp34_peer.py decode FILE...    # golden .hex PDUs through smpp34.decode

`serve` accepts every bind and every submit_sm (message ids py1, py2, ...), logs what it received
(fields as smpp34 decoded them, the UCS-2 text read here from the UDH and user data), and answers each
accepted submit with a delivery receipt (deliver_sm, esm_class 0x04, Appendix B text and the TLVs
receipted_message_id and message_state), logging the client's deliver_sm_resp status. It runs until
killed. Exit code 3: smpp34 is not installed (pip install smpp34).
"""
import asyncio
import json
import sys

try:
    import smpp34
except ImportError:
    sys.stderr.write("No module named 'smpp34': pip install smpp34\n")
    sys.exit(3)


def read_udh(esm_class, sm):
    """(reference, total, seq) or None, and the user data after the UDH."""
    if not esm_class & 0x40:
        return None, sm
    udhl = sm[0]
    udh, ud = sm[1:1 + udhl], sm[1 + udhl:]
    i, concat = 0, None
    while i + 1 < len(udh):
        iei, ln = udh[i], udh[i + 1]
        body = udh[i + 2:i + 2 + ln]
        if iei == 0x00 and ln == 3:
            concat = list(body)
        i += 2 + ln
    return concat, ud


def fields(ev):
    concat, ud = read_udh(ev.esm_class, ev.short_message)
    return {
        "source_addr": ev.source_addr,
        "source_addr_ton": ev.source_addr_ton,
        "source_addr_npi": ev.source_addr_npi,
        "destination_addr": ev.destination_addr,
        "dest_addr_ton": ev.dest_addr_ton,
        "dest_addr_npi": ev.dest_addr_npi,
        "esm_class": ev.esm_class,
        "data_coding": ev.data_coding,
        "registered_delivery": ev.registered_delivery,
        "short_message": ev.short_message.hex(),
        "concat": concat,
        "text": ud.decode("utf-16-be") if ev.data_coding == 8 else None,
        "tlvs": [[t.tag, t.value.hex()] for t in ev.tlvs],
    }


async def serve(port, log_path):
    log = open(log_path, "a", buffering=1)

    def write(obj):
        log.write(json.dumps(obj, ensure_ascii=False) + "\n")

    server = smpp34.Server("127.0.0.1", port, system_id="PYSMSC")
    await server.start()
    write({"event": "listening", "port": port})
    sessions = {}
    n = 0

    async def receipt(esme, ev, message_id):
        text = ("id:%s sub:001 dlvrd:001 submit date:2503051200 done date:2503051201 "
                "stat:DELIVRD err:000 text:" % message_id).encode()
        resp = await esme.deliver_sm(
            source_addr=ev.destination_addr, source_addr_ton=1, source_addr_npi=1,
            destination_addr=ev.source_addr, dest_addr_ton=0, dest_addr_npi=1,
            esm_class=0x04, short_message=text,
            tlvs=[smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\0"),
                  smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, b"\x02")])
        write({"event": "deliver_sm_resp", "message_id": message_id,
               "command_status": resp.command_status})

    while True:
        ev = await server.next()
        if isinstance(ev, smpp34.Esme):
            sessions[ev.session_id] = ev
            write({"event": "bind", "system_id": ev.system_id})
        elif isinstance(ev, smpp34.SubmitSmEvent):
            n += 1
            message_id = "py%d" % n
            rec = fields(ev)
            rec.update({"event": "submit_sm", "message_id": message_id})
            write(rec)
            ev.accept(message_id)
            esme = sessions.get(ev.session_id)
            if esme is not None:
                asyncio.get_running_loop().create_task(receipt(esme, ev, message_id))
        elif isinstance(ev, smpp34.Unbound):
            write({"event": "unbound"})


def decode(paths):
    out = {}
    for p in paths:
        hexs = "".join(line.split("#")[0].strip() for line in open(p))
        pdu = smpp34.decode(bytes.fromhex(hexs))
        rec = {"command_id": pdu.command_id, "sequence_number": pdu.sequence_number}
        if isinstance(pdu, (smpp34.SubmitSm, smpp34.DeliverSm)):
            rec.update(fields(pdu))
        else:
            rec.update({"command_status": pdu.command_status, "body": pdu.body.hex()})
        out[p.rsplit("/", 1)[-1]] = rec
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[2]), sys.argv[3]))
    elif sys.argv[1] == "decode":
        decode(sys.argv[2:])
    else:
        sys.exit("usage: smpp34_peer.py serve PORT LOG | decode FILE...")
