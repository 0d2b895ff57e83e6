// kafkajs reads a compacted topic (`compaction.py` wrote and compacted
// it, and saved what librdkafka read to FILE): from the start, over the
// gaps compaction left, a consumer group gets exactly the same records.
// Prints "kafkajs compaction ok".
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const [broker, topic, saved] = process.argv.slice(2)
const kafka = new Kafka({ clientId: 'kjs-compaction', brokers: [broker], logLevel: logLevel.NOTHING })

async function main () {
  const expected = JSON.parse(fs.readFileSync(saved, 'utf8'))
  const admin = kafka.admin()
  await admin.connect()
  const [{ high }] = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  const consumer = kafka.consumer({ groupId: 'kjs-compaction-' + topic })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out after ' + seen.length + ' records')), 30000)
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.push([Number(message.offset), message.key.toString(),
          message.value === null ? null : message.value.toString()])
        if (Number(message.offset) + 1 >= Number(high)) {
          clearTimeout(timer)
          resolve()
        }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  if (JSON.stringify(seen) !== JSON.stringify(expected)) {
    throw new Error('kafkajs read ' + JSON.stringify(seen) + ', librdkafka ' + JSON.stringify(expected))
  }
  console.log('kafkajs compaction ok', seen.length)
}

main().catch(e => { console.error(e); process.exit(1) })
