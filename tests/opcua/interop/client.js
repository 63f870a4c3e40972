// node-opcua (an independent OPC UA stack) against vplc's server: browse, read, subscribe,
// write, call. Prints one JSON object; tests/opcua/test_interop.py checks it.
"use strict";
const path = require("path");
const {
  OPCUAClient,
  MessageSecurityMode,
  SecurityPolicy,
  UserTokenType,
  AttributeIds,
  DataType,
  TimestampsToReturn,
} = require("node-opcua-client");
const { OPCUACertificateManager } = require("node-opcua-certificate-manager");

const [url, pki, ...users] = process.argv.slice(2);
const login = (u) => ({ type: UserTokenType.UserName, userName: u.split(":")[0], password: u.split(":")[1] });

async function withSession(client, user, fn) {
  const session = await client.createSession(login(user));
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

async function main() {
  const out = {};
  const client = OPCUAClient.create({
    applicationName: "vplc-interop",
    applicationUri: "urn:vplc:interop:node-opcua",
    securityMode: MessageSecurityMode.SignAndEncrypt,
    securityPolicy: SecurityPolicy.Basic256Sha256,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 2, initialDelay: 200, maxDelay: 1000 },
    clientCertificateManager: new OPCUACertificateManager({ rootFolder: path.resolve(pki), automaticallyAcceptUnknownCertificate: true }),
  });
  await client.connect(url);
  try {
    const [operator, viewer] = users;
    await withSession(client, operator, async (session) => {
      const nsArray = (await session.read({ nodeId: "i=2255", attributeId: AttributeIds.Value })).value.value;
      const ns = nsArray.indexOf("urn:vplc:bioreactor");
      out.ns = ns;
      const id = (s) => `ns=${ns};s=${s}`;
      const browsed = await session.browse(id("Points"));
      out.points = browsed.references.map((r) => r.browseName.name);
      const tt = await session.read({ nodeId: id("Points.TT101"), attributeId: AttributeIds.Value });
      out.tt101 = { value: tt.value.value, status: tt.statusCode.name, source: tt.sourceTimestamp };
      const eu = await session.read({ nodeId: id("Points.TT101.EngineeringUnits"), attributeId: AttributeIds.Value });
      out.tt101_unit = eu.value.value.unitId;

      const sub = await session.createSubscription2({ requestedPublishingInterval: 100, publishingEnabled: true, requestedMaxKeepAliveCount: 10, requestedLifetimeCount: 100 });
      const item = await sub.monitor({ nodeId: id("Tasks.control.Cycles"), attributeId: AttributeIds.Value }, { samplingInterval: 100, queueSize: 10, discardOldest: true }, TimestampsToReturn.Both);
      const cycles = [];
      await new Promise((resolve) => {
        item.on("changed", (dv) => {
          const v = dv.value.value; // a UInt64 arrives as [high, low]
          cycles.push(Array.isArray(v) ? v[0] * 2 ** 32 + v[1] : Number(v));
          if (cycles.length >= 3) resolve();
        });
        setTimeout(resolve, 8000);
      });
      out.cycles = cycles;
      await sub.terminate();

      const w = await session.write({ nodeId: id("Parameters.agitation_rpm"), attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Float, value: 160 } } });
      out.write = w.name;
      const wBad = await session.write({ nodeId: id("Parameters.agitation_rpm"), attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Float, value: 999 } } });
      out.write_out_of_range = wBad.name;
      await new Promise((r) => setTimeout(r, 500));
      out.agitation_rpm = (await session.read({ nodeId: id("Parameters.agitation_rpm"), attributeId: AttributeIds.Value })).value.value;
      const call = await session.call({ objectId: id("Batch.batch.phase"), methodId: id("Batch.batch.phase.Hold"), inputArguments: [] });
      out.hold = call.statusCode.name;
      let state = "";
      for (let i = 0; i < 50 && state !== "HELD"; i++) {
        await new Promise((r) => setTimeout(r, 200));
        state = (await session.read({ nodeId: id("Batch.batch.phase.State"), attributeId: AttributeIds.Value })).value.value;
      }
      out.state_after_hold = state;
      const restart = await session.call({ objectId: id("Batch.batch.phase"), methodId: id("Batch.batch.phase.Restart"), inputArguments: [] });
      out.restart = restart.statusCode.name;

      const alarms = await session.browse(id("Alarms"));
      out.alarms = alarms.references.map((r) => r.browseName.name);
      const temp = await session.browse(id("Alarms.alarms.temp"));
      out.alarm_children = temp.references.map((r) => r.browseName.name);
      const ack = await session.call({ objectId: id("Alarms.alarms.temp"), methodId: id("Alarms.alarms.temp.Acknowledge"), inputArguments: [] });
      out.ack = ack.statusCode.name;
      let acked = false;
      for (let i = 0; i < 50 && acked !== true; i++) {
        await new Promise((r) => setTimeout(r, 100));
        acked = (await session.read({ nodeId: id("Alarms.alarms.temp.Acked"), attributeId: AttributeIds.Value })).value.value;
      }
      out.acked = acked;

      const programs = await session.browse(id("Programs"));
      out.programs = programs.references.map((r) => r.browseName.name);
      const pid = await session.browse(id("Programs.loops.tic101"));
      out.pid_children = pid.references.map((r) => r.browseName.name);
      const pidOut = await session.read({ nodeId: id("Programs.loops.tic101.OUT"), attributeId: AttributeIds.Value });
      out.pid_out = { value: pidOut.value.value, status: pidOut.statusCode.name };
    });
    await withSession(client, viewer, async (session) => {
      const id = (s) => `ns=${out.ns};s=${s}`;
      const w = await session.write({ nodeId: id("Parameters.agitation_rpm"), attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Float, value: 170 } } });
      out.viewer_write = w.name;
      const ack = await session.call({ objectId: id("Alarms.alarms.temp"), methodId: id("Alarms.alarms.temp.Acknowledge"), inputArguments: [] });
      out.viewer_ack = ack.statusCode.name;
    });
  } finally {
    await client.disconnect();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
