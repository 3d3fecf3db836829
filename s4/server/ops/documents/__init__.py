"""Bucket documents: the S3 sub-resources that are a document about a bucket (CORS rules, lifecycle,
encryption, public access block, ownership controls, notification, tags, ACL, policy), validated as
S3 validates them and kept through the ObjectStore's bucket documents.

One module per kind of document parses and checks it (``cors``, ``lifecycle``, ``acl``, ``policy``,
``settings`` for the small ones); ``handlers`` routes the sub-resources and answers Get/Put/Delete.
Storing an ACL or a policy does not enforce it: that is the access-control layer's work.
"""
