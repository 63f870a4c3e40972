// An independent Modbus TCP client (npm modbus-serial) driving vplc's server; one JSON line each.
const ModbusRTU = require("modbus-serial");

async function step(name, fn) {
  try {
    const value = await fn();
    console.log(JSON.stringify({ name, ok: true, value }));
  } catch (err) {
    console.log(JSON.stringify({ name, ok: false, code: err.modbusCode ?? null, error: String(err.message || err) }));
  }
}

async function main() {
  const [port] = process.argv.slice(2);
  const client = new ModbusRTU();
  await client.connectTCP("127.0.0.1", { port: Number(port) });
  client.setID(1);
  client.setTimeout(3000);
  const f32 = (data) => { const b = Buffer.alloc(4); b.writeUInt16BE(data[0], 0); b.writeUInt16BE(data[1], 2); return b.readFloatBE(0); };
  const regs = (v) => { const b = Buffer.alloc(4); b.writeFloatBE(v, 0); return [b.readUInt16BE(0), b.readUInt16BE(2)]; };
  await step("read_x", async () => f32((await client.readInputRegisters(0, 2)).data));
  await step("read_gain", async () => f32((await client.readHoldingRegisters(10, 2)).data));
  await step("read_limit", async () => (await client.readHoldingRegisters(12, 1)).data[0]);
  await step("read_enable", async () => (await client.readCoils(0, 1)).data[0]);
  await step("write_gain", async () => { await client.writeRegisters(10, regs(6.25)); return f32((await client.readHoldingRegisters(10, 2)).data); });
  await step("write_limit", async () => { await client.writeRegister(12, 42); return (await client.readHoldingRegisters(12, 1)).data[0]; });
  await step("write_enable", async () => { await client.writeCoil(0, true); return (await client.readCoils(0, 1)).data[0]; });
  await step("write_too_big", async () => client.writeRegisters(10, regs(99.0)));
  await step("write_point", async () => client.writeRegisters(0, regs(1.0)));
  await step("read_unmapped", async () => client.readInputRegisters(500, 1));
  client.close(() => {});
}

main().catch((err) => { console.error(err); process.exit(1); });
