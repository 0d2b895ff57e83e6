// kafkajs's topic admin calls, each checked against what Kafka answers:
// createTopics (validateOnly first: before, every topic of a validate-only
// request was refused with INVALID_REQUEST), listTopics,
// fetchTopicMetadata, createPartitions, describeConfigs and alterConfigs,
// fetchTopicOffsets and fetchTopicOffsetsByTimestamp, deleteTopicRecords,
// resetOffsets, the ACL calls, and deleteTopics. Prints "kafkajs topics ok".
const {
  Kafka, logLevel, ConfigResourceTypes, AclResourceTypes, AclOperationTypes,
  AclPermissionTypes, ResourcePatternTypes
} = require('kafkajs')

const [broker, topic] = process.argv.slice(2)
const kafka = new Kafka({ clientId: 'kjs-topics', brokers: [broker], logLevel: logLevel.NOTHING })

function check (ok, what) {
  if (!ok) throw new Error('failed: ' + what)
}

async function refused (f, type) {
  try {
    await f()
  } catch (e) {
    const types = (e.errors || [e]).map(x => x.type)
    check(types.includes(type), 'refused with ' + type + ', got ' + JSON.stringify(types))
    return
  }
  throw new Error('failed: not refused, expected ' + type)
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  const other = topic + '-other'
  // validateOnly: answered as a creation would be, and nothing made
  // (kafkajs would wait for the leaders of topics not made without
  // waitForLeaders off, as against Kafka without auto-creation).
  await admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic, numPartitions: 2 }] })
  check(!(await admin.listTopics()).includes(topic), 'validateOnly created nothing')
  await refused(() => admin.createTopics({
    validateOnly: true, waitForLeaders: false, topics: [{ topic, configEntries: [{ name: 'cleanup.policy', value: 'shred' }] }]
  }), 'INVALID_CONFIG')
  check(await admin.createTopics({
    topics: [{ topic, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '3600000' }] }, { topic: other }]
  }), 'created')
  // kafkajs answers false when every topic already exists.
  const again = await admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic }] })
  check(again === false, 'validating an existing topic: ' + again)
  const listed = await admin.listTopics()
  check(listed.includes(topic) && listed.includes(other), 'listed ' + JSON.stringify(listed))

  const producer = kafka.producer()
  await producer.connect()
  const before = Date.now()
  await producer.send({ topic, messages: [0, 1, 2, 3, 4, 5].map(i => ({ value: 'm' + i, partition: i % 2 })) })
  await producer.disconnect()

  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
  const { topics: [meta] } = await admin.fetchTopicMetadata({ topics: [topic] })
  check(meta.partitions.length === 3 && meta.partitions.every(p => p.leader === 0), 'metadata ' + JSON.stringify(meta))
  await refused(() => admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] }), 'INVALID_PARTITIONS')

  const described = async (names) => {
    const { resources: [r] } = await admin.describeConfigs({
      includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: names }]
    })
    return Object.fromEntries(r.configEntries.map(e => [e.configName, e.configValue]))
  }
  check((await described(['retention.ms']))['retention.ms'] === '3600000', 'retention.ms from createTopics')
  await admin.alterConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }]
  })
  check((await described(['retention.ms']))['retention.ms'] === '7200000', 'retention.ms altered')

  const offsets = await admin.fetchTopicOffsets(topic)
  const high = Object.fromEntries(offsets.map(p => [p.partition, p.high]))
  check(high[0] === '3' && high[1] === '3' && high[2] === '0', 'high watermarks ' + JSON.stringify(offsets))
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, before - 60000)
  check(byTime.find(p => p.partition === 0).offset === '0', 'by time ' + JSON.stringify(byTime))
  const future = await admin.fetchTopicOffsetsByTimestamp(topic, Date.now() + 3600000)
  check(future.find(p => p.partition === 0).offset === '3', 'a future time is the end ' + JSON.stringify(future))

  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '2' }] })
  const after = await admin.fetchTopicOffsets(topic)
  check(after.find(p => p.partition === 0).low === '2', 'log start after deleteTopicRecords ' + JSON.stringify(after))

  const groupId = 'kjs-reset-' + topic
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 1, offset: '1' }] })
  await admin.resetOffsets({ groupId, topic, earliest: true })
  const [reset] = await admin.fetchOffsets({ groupId, topics: [topic] })
  check(reset.partitions.every(p => p.offset === '-2'), 'reset to earliest ' + JSON.stringify(reset))

  const acl = {
    resourceType: AclResourceTypes.TOPIC, resourceName: topic, resourcePatternType: ResourcePatternTypes.LITERAL,
    principal: 'User:bob', host: '*', operation: AclOperationTypes.READ, permissionType: AclPermissionTypes.ALLOW
  }
  await admin.createAcls({ acl: [acl] })
  const anyFilter = {
    resourceType: AclResourceTypes.TOPIC, resourceName: topic, host: '*', permissionType: AclPermissionTypes.ANY,
    operation: AclOperationTypes.ANY, resourcePatternType: ResourcePatternTypes.ANY
  }
  const { resources } = await admin.describeAcls(anyFilter)
  check(resources.length === 1 && resources[0].acls[0].principal === 'User:bob', 'acls ' + JSON.stringify(resources))
  const { filterResponses: [deleted] } = await admin.deleteAcls({ filters: [anyFilter] })
  check(deleted.matchingAcls.length === 1, 'deleted acls ' + JSON.stringify(deleted))
  check((await admin.describeAcls(anyFilter)).resources.length === 0, 'no acl left')

  await admin.deleteTopics({ topics: [other] })
  check(!(await admin.listTopics()).includes(other), 'deleted topic still listed')
  await admin.disconnect()
  console.log('kafkajs topics ok')
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
