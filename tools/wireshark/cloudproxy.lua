-- Wireshark / tshark dissector for the cloud-proxy wire protocol, version 1
-- (docs/protocol.md; its executable form is cloudproxy_core::wire, core/src/wire/).
--
--   tshark -X lua_script:tools/wireshark/cloudproxy.lua -r capture.pcap -Y cloudproxy -V
--   wireshark -X lua_script:tools/wireshark/cloudproxy.lua capture.pcap
--   (or copy it into ~/.local/lib/wireshark/plugins/)
--
-- Ports (docs/protocol.md §1): access points on 1080, 8000, 25000, 9700 (TCP and UDP);
-- relays on 4000/TCP (tunnels and media channels) and 4500-4650/UDP (media). On 1080, traffic
-- that is not cloud-proxy (an enterprise's SOCKS5 server) goes to Wireshark's SOCKS dissector.
-- After TunnelAccept a tunnel carries raw signalling bytes, shown as such, never as errors.

local cp = Proto("cloudproxy", "Cloud Proxy Protocol")

local MAGIC = 0xC10D
local VERSION = 1
local HEADER_LEN = 6
local MAX_BODY = 2048

local types = {
  [0x01] = "ApRequest", [0x02] = "ApResponse", [0x03] = "Error",
  [0x10] = "TunnelOpen", [0x11] = "TunnelAccept",
  [0x12] = "MediaChannelOpen", [0x13] = "MediaChannelAccept",
  [0x20] = "MediaData", [0x21] = "Keepalive", [0x22] = "KeepaliveAck",
  [0x30] = "Close",
}
local error_codes = {
  [1] = "UnsupportedVersion", [2] = "Malformed", [3] = "TicketInvalid", [4] = "TicketExpired",
  [5] = "TicketReplayed", [6] = "ClientMismatch", [7] = "DestinationRefused",
  [8] = "QuotaExceeded", [9] = "UpstreamUnreachable", [10] = "UnknownSession",
  [11] = "ShuttingDown", [12] = "UnknownApp", [13] = "RateLimited", [14] = "PaddingRequired",
}
local close_reasons = {
  [0] = "Normal", [1] = "IdleTimeout", [2] = "TicketExpired", [3] = "ShuttingDown",
  [4] = "Error", [5] = "UpstreamClosed",
}

local f = {
  magic = ProtoField.uint16("cloudproxy.magic", "Magic", base.HEX),
  version = ProtoField.uint8("cloudproxy.version", "Version"),
  type = ProtoField.uint8("cloudproxy.type", "Type", base.HEX, types),
  body_len = ProtoField.uint16("cloudproxy.body_len", "Body length"),
  request_id = ProtoField.uint32("cloudproxy.request_id", "Request id", base.HEX),
  app_id = ProtoField.string("cloudproxy.app_id", "App id"),
  flags = ProtoField.uint8("cloudproxy.flags", "Flags", base.HEX),
  flag_udp = ProtoField.bool("cloudproxy.flags.udp_media", "UDP media wanted", 8, nil, 0x01),
  padding = ProtoField.bytes("cloudproxy.padding", "Padding"),
  ticket = ProtoField.bytes("cloudproxy.ticket", "Ticket"),
  ticket_version = ProtoField.uint8("cloudproxy.ticket.version", "Ticket version"),
  ticket_expires = ProtoField.uint64("cloudproxy.ticket.expires_at_ms", "Expires at (ms)"),
  ticket_nonce = ProtoField.bytes("cloudproxy.ticket.nonce", "Nonce"),
  ticket_client = ProtoField.string("cloudproxy.ticket.client_ip", "Client IP"),
  ticket_app = ProtoField.string("cloudproxy.ticket.app_id", "App id"),
  ticket_mac = ProtoField.bytes("cloudproxy.ticket.mac", "MAC (HMAC-SHA256)"),
  lifetime = ProtoField.uint32("cloudproxy.ticket_lifetime_ms", "Ticket lifetime (ms)"),
  relay_count = ProtoField.uint8("cloudproxy.relay_count", "Relays"),
  relay = ProtoField.string("cloudproxy.relay", "Relay"),
  relay_tcp = ProtoField.uint16("cloudproxy.relay.tcp_port", "TCP port"),
  relay_udp = ProtoField.uint16("cloudproxy.relay.udp_port", "UDP port"),
  error_code = ProtoField.uint16("cloudproxy.error.code", "Error code", base.DEC, error_codes),
  reason_text = ProtoField.string("cloudproxy.error.reason", "Reason"),
  destination = ProtoField.string("cloudproxy.destination", "Destination"),
  session_id = ProtoField.uint64("cloudproxy.session_id", "Session id", base.HEX),
  udp_port = ProtoField.uint16("cloudproxy.udp_port", "UDP port"),
  keepalive = ProtoField.uint32("cloudproxy.keepalive_interval_ms", "Keepalive interval (ms)"),
  idle = ProtoField.uint32("cloudproxy.idle_timeout_ms", "Idle timeout (ms)"),
  peer = ProtoField.string("cloudproxy.peer", "Peer"),
  payload = ProtoField.bytes("cloudproxy.payload", "Payload"),
  payload_len = ProtoField.uint16("cloudproxy.payload_len", "Payload length"),
  seq = ProtoField.uint32("cloudproxy.seq", "Sequence"),
  close_reason = ProtoField.uint8("cloudproxy.close.reason", "Close reason", base.DEC, close_reasons),
  raw = ProtoField.bytes("cloudproxy.raw_signalling", "Raw signalling (tunnelled)"),
}
local fields = {}
for _, v in pairs(f) do fields[#fields + 1] = v end
cp.fields = fields

local e_bad = ProtoExpert.new("cloudproxy.bad", "Malformed cloud-proxy message",
  expert.group.MALFORMED, expert.severity.ERROR)
cp.experts = { e_bad }

-- Readers over a body range; each returns the next offset, or nil when the bytes run out.
local function ipaddr(tvb, off, limit)
  if off + 1 > limit then return nil end
  local family = tvb(off, 1):uint()
  if family == 4 and off + 5 <= limit then
    return off + 5, tostring(tvb(off + 1, 4):ipv4())
  elseif family == 6 and off + 17 <= limit then
    return off + 17, "[" .. tostring(tvb(off + 1, 16):ipv6()) .. "]"
  end
  return nil
end

local function sockaddr(tvb, off, limit)
  local next_off, ip = ipaddr(tvb, off, limit)
  if not next_off or next_off + 2 > limit then return nil end
  return next_off + 2, ip .. ":" .. tvb(next_off, 2):uint()
end

local function str8(tvb, off, limit)
  if off + 1 > limit then return nil end
  local len = tvb(off, 1):uint()
  if off + 1 + len > limit then return nil end
  return off + 1 + len, tvb(off + 1, len):string()
end

local function ticket(tvb, tree, off, limit)
  local start = off
  if off + 25 > limit then return nil end
  local t = tree:add(f.ticket, tvb(off, 0))
  t:add(f.ticket_version, tvb(off, 1))
  t:add(f.ticket_expires, tvb(off + 1, 8))
  t:add(f.ticket_nonce, tvb(off + 9, 16))
  local o, ip = ipaddr(tvb, off + 25, limit)
  if not o then return nil end
  t:add(f.ticket_client, tvb(off + 25, o - off - 25), ip)
  local o2, app = str8(tvb, o, limit)
  if not o2 or o2 + 32 > limit then return nil end
  t:add(f.ticket_app, tvb(o, o2 - o), app)
  t:add(f.ticket_mac, tvb(o2, 32))
  t:set_len(o2 + 32 - start)
  return o2 + 32
end

-- Dissects one message's body at [off, limit) into `tree`; returns a summary, or nil when
-- the body does not hold what its type says.
local function body(kind, tvb, tree, off, limit)
  local sid = function(o) tree:add(f.session_id, tvb(o, 8)); return o + 8 end
  if kind == 0x01 then
    if off + 4 > limit then return nil end
    tree:add(f.request_id, tvb(off, 4))
    local o, app = str8(tvb, off + 4, limit)
    if not o or o + 1 > limit then return nil end
    tree:add(f.app_id, tvb(off + 5, o - off - 5), app)
    local ft = tree:add(f.flags, tvb(o, 1))
    ft:add(f.flag_udp, tvb(o, 1))
    if limit > o + 1 then tree:add(f.padding, tvb(o + 1, limit - o - 1)) end
    return string.format("app %s, request 0x%08x", app, tvb(off, 4):uint())
  elseif kind == 0x02 then
    if off + 4 > limit then return nil end
    tree:add(f.request_id, tvb(off, 4))
    local o = ticket(tvb, tree, off + 4, limit)
    if not o or o + 5 > limit then return nil end
    tree:add(f.lifetime, tvb(o, 4))
    local count = tvb(o + 4, 1):uint()
    tree:add(f.relay_count, tvb(o + 4, 1))
    o = o + 5
    local relays = {}
    for _ = 1, count do
      local o2, ip = ipaddr(tvb, o, limit)
      if not o2 or o2 + 4 > limit then return nil end
      local r = tree:add(f.relay, tvb(o, o2 + 4 - o), ip)
      r:add(f.relay_tcp, tvb(o2, 2))
      r:add(f.relay_udp, tvb(o2 + 2, 2))
      relays[#relays + 1] = ip
      o = o2 + 4
    end
    if o ~= limit then return nil end
    return string.format("%d relays: %s", count, table.concat(relays, ", "))
  elseif kind == 0x03 then
    if off + 2 > limit then return nil end
    local code = tvb(off, 2):uint()
    tree:add(f.error_code, tvb(off, 2))
    local o, why = str8(tvb, off + 2, limit)
    if not o or o ~= limit then return nil end
    tree:add(f.reason_text, tvb(off + 2, o - off - 2), why)
    return string.format("%s: %s", error_codes[code] or ("code " .. code), why)
  elseif kind == 0x10 then
    local o = ticket(tvb, tree, off, limit)
    if not o then return nil end
    local o2, dest = sockaddr(tvb, o, limit)
    if not o2 or o2 ~= limit then return nil end
    tree:add(f.destination, tvb(o, o2 - o), dest)
    return "to " .. dest
  elseif kind == 0x11 then
    if limit - off ~= 18 then return nil end
    sid(off)
    tree:add(f.udp_port, tvb(off + 8, 2))
    tree:add(f.keepalive, tvb(off + 10, 4))
    tree:add(f.idle, tvb(off + 14, 4))
    return string.format("session %s, UDP port %d", tvb(off, 8):bytes():tohex(), tvb(off + 8, 2):uint())
  elseif kind == 0x12 or kind == 0x13 then
    if limit - off ~= 8 then return nil end
    sid(off)
    return "session " .. tvb(off, 8):bytes():tohex()
  elseif kind == 0x20 then
    if off + 8 > limit then return nil end
    sid(off)
    local o, peer = sockaddr(tvb, off + 8, limit)
    if not o or limit - o > 1500 then return nil end
    tree:add(f.peer, tvb(off + 8, o - off - 8), peer)
    tree:add(f.payload_len, limit - o):set_generated()
    if limit > o then tree:add(f.payload, tvb(o, limit - o)) end
    return string.format("peer %s, %d bytes", peer, limit - o)
  elseif kind == 0x21 or kind == 0x22 then
    if limit - off ~= 12 then return nil end
    sid(off)
    tree:add(f.seq, tvb(off + 8, 4))
    return "seq " .. tvb(off + 8, 4):uint()
  elseif kind == 0x30 then
    if limit - off ~= 9 then return nil end
    sid(off)
    local reason = tvb(off + 8, 1):uint()
    tree:add(f.close_reason, tvb(off + 8, 1))
    return close_reasons[reason] or ("reason " .. reason)
  end
  return nil
end

-- Whether the bytes at `off` start a cloud-proxy header.
local function starts_message(tvb, off)
  return tvb:len() - off >= 3 and tvb(off, 2):uint() == MAGIC and tvb(off + 2, 1):uint() == VERSION
end

-- Dissects one message at `off` (its bytes all present); returns its type name.
local function message(tvb, pinfo, tree, off)
  local kind = tvb(off + 3, 1):uint()
  local len = tvb(off + 4, 2):uint()
  local name = types[kind] or string.format("type 0x%02x", kind)
  local sub = tree:add(cp, tvb(off, HEADER_LEN + len), "Cloud Proxy " .. name)
  sub:add(f.magic, tvb(off, 2))
  sub:add(f.version, tvb(off + 2, 1))
  sub:add(f.type, tvb(off + 3, 1))
  sub:add(f.body_len, tvb(off + 4, 2))
  local summary = body(kind, tvb, sub, off + HEADER_LEN, off + HEADER_LEN + len)
  if summary then
    sub:append_text(": " .. summary)
    return name .. " (" .. summary .. ")"
  end
  sub:add_proto_expert_info(e_bad, name .. ": the body does not hold what its type says")
  return name
end

local socks = Dissector.get("socks")

local function dissect(tvb, pinfo, tree)
  local total = tvb:len()
  if not starts_message(tvb, 0) then
    -- Port 1080 of an enterprise's SOCKS5 server is SOCKS; a relay's tunnel after
    -- TunnelAccept carries raw signalling.
    if (pinfo.src_port == 1080 or pinfo.dst_port == 1080) and socks then
      return socks:call(tvb, pinfo, tree)
    end
    pinfo.cols.protocol = "CPROXY"
    pinfo.cols.info = string.format("raw signalling, %d bytes", total)
    tree:add(cp, tvb(), "Cloud Proxy tunnel"):add(f.raw, tvb())
    return total
  end
  local names = {}
  local off = 0
  local is_tcp = pinfo.port_type == 2
  while off < total do
    if not starts_message(tvb, off) then
      -- After a TunnelAccept: the rest is raw signalling.
      tree:add(cp, tvb(off), "Cloud Proxy tunnel"):add(f.raw, tvb(off))
      off = total
      break
    end
    if total - off < HEADER_LEN then
      if is_tcp then pinfo.desegment_offset = off; pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT; return total end
      break
    end
    local len = tvb(off + 4, 2):uint()
    if len > MAX_BODY then break end
    if total - off < HEADER_LEN + len then
      if is_tcp then pinfo.desegment_offset = off; pinfo.desegment_len = HEADER_LEN + len - (total - off); return total end
      break
    end
    names[#names + 1] = message(tvb, pinfo, tree, off)
    off = off + HEADER_LEN + len
  end
  if off < total then
    tree:add(cp, tvb(off), "Cloud Proxy (truncated)"):add_proto_expert_info(e_bad, "truncated cloud-proxy message")
  end
  pinfo.cols.protocol = "CPROXY"
  pinfo.cols.info = table.concat(names, ", ")
  return total
end

function cp.dissector(tvb, pinfo, tree)
  return dissect(tvb, pinfo, tree)
end

local tcp_ports = DissectorTable.get("tcp.port")
local udp_ports = DissectorTable.get("udp.port")
for _, port in ipairs({ 1080, 8000, 25000, 9700 }) do
  tcp_ports:add(port, cp)
  udp_ports:add(port, cp)
end
tcp_ports:add(4000, cp)
for port = 4500, 4650 do
  udp_ports:add(port, cp)
end
