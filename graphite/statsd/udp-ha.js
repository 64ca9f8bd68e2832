{
  "graphiteHost": "carbon-relay",
  "graphitePort": 2003,
  "port": 8125,
  "flushInterval": 10000,
  "percentThreshold": [
    90,
    95,
    99
  ],
  "graphite": {
    "legacyNamespace": true
  },
  "servers": [
    {
      "server": "./servers/udp",
      "address": "0.0.0.0",
      "port": 8125
    }
  ],
  "deleteIdleStats": true,
  "deleteGauges": false
}
