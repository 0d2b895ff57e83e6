// kafkajs over SASL: SCRAM-SHA-256 and PLAIN on SASL_SSL (trusting the
// test CA), SCRAM-SHA-512 on SASL_PLAINTEXT, and a wrong password refused.
// Arguments: SASL_PLAINTEXT address, SASL_SSL address, CA file, topic,
// user, password.
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const [plainAddr, sslAddr, ca, topic, username, password] = process.argv.slice(2);
const ssl = { ca: [fs.readFileSync(ca, 'utf-8')], servername: 'localhost' };

async function main() {
  const sent = [];
  for (const [brokers, sslOpt, mechanism] of [
    [sslAddr, ssl, 'scram-sha-256'],
    [plainAddr, false, 'scram-sha-512'],
    [sslAddr, ssl, 'plain'],
  ]) {
    const kafka = new Kafka({ brokers: [brokers], ssl: sslOpt, sasl: { mechanism, username, password }, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const value = `kafkajs ${mechanism} ${sslOpt ? 'SASL_SSL' : 'SASL_PLAINTEXT'}`;
    await producer.send({ topic, messages: [{ value }] });
    await producer.disconnect();
    sent.push(value);
  }
  const bad = new Kafka({ brokers: [plainAddr], sasl: { mechanism: 'scram-sha-256', username, password: 'wrong' }, logLevel: logLevel.NOTHING, retry: { retries: 0 } });
  const producer = bad.producer();
  try {
    await producer.connect();
    throw new Error('a wrong password was accepted');
  } catch (e) {
    if (e.message === 'a wrong password was accepted') throw e;
    console.log('wrong password refused:', e.name);
  }
  console.log('sasl ok', sent.length);
}

main().catch((e) => { console.error(e); process.exit(1); });
